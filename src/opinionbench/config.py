"""params.yaml's sections, composed from the settings types the packages own: the composition root.

It imports downward only (no library module imports it). Each stage validates only the sections
it declares in dvc.yaml (`load(BuildParams)`), so a typo in one section never stops an unrelated
stage, and every error names the exact key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, RootModel, ValidationError,
                      ValidationInfo, model_validator)

from opinionbench.annotation import ReviewParams
from opinionbench.elicit.base import MethodSettings
from opinionbench.errors import ConfigError, did_you_mean
from opinionbench.io import DataPath
from opinionbench.published import PublishedParams
from opinionbench.questionnaire.correct import CorrectionParams
from opinionbench.release import ReleaseParams
from opinionbench.survey.answer_classes import AnswerConvention
from opinionbench.tracking.settings import TrackingParams

if TYPE_CHECKING:
    from opinionbench.inference.plan import RunPlan
    from opinionbench.models.base import BackendSettings

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    """Unknown keys are errors: a misspelt knob must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Section):
    waves_dir: Path = Field(Path("data/sample"), description="directory of W*.sav waves: the sample, or real ATP data")
    waves: list[str] = Field(default_factory=list, description="wave ids to use (e.g. W54); empty = all")
    survey_details: Path | None = Field(
        None, description="optional survey-details.json (wave names, dates, topics) for real ATP waves"
    )

    def wave_files(self) -> list[Path]:
        root = self.waves_dir
        if not root.is_dir():
            raise ConfigError(f"params.yaml: data.waves_dir: {root} is not a directory")
        files = sorted(root.glob("W*.sav"), key=_wave_sort_key)
        if not files:
            raise ConfigError(f"params.yaml: data.waves_dir: no W*.sav files in {root}")
        if self.waves:
            wanted = set(self.waves)
            missing = wanted - {f.stem for f in files}
            if missing:
                raise ConfigError(f"params.yaml: data.waves: no .sav for {sorted(missing)} in {root}")
            files = [f for f in files if f.stem in wanted]
        return files


def _wave_sort_key(path: Path) -> tuple[float, str]:
    try:
        return (float(path.stem[1:]), path.stem)
    except ValueError:
        return (float("inf"), path.stem)




class BuildParams(Section):
    workers: int = Field(2, ge=1, le=64)
    answer_classes: AnswerConvention = Field(
        "pew", description="which answers are non-answers: pew (refused, no answer, volunteered don't know) "
        "| opinionqa (only 'Refused'); rules in resources/answer_classes.yaml"
    )
    release_text: list[Literal["label_truncated", "wording_differs"]] = Field(
        default_factory=list, description="audit statuses whose question text is taken from the audited release "
        "(text_source: release); needs audit.release"
    )
    out_dir: DataPath = Path("data/build")


class AuditParams(Section):
    """Published datasets checked against the microdata (`opinionbench audit`); null = not audited."""

    release: Path | None = Field(None, description="a question set {wave: {qcode: {question, options}}}, "
                                 "e.g. ../shared/data/opinionqa_xl/opinionqa-xl.json")
    group_counts: Path | None = Field(None, description="OpinionQA's per-group counts (a directory of *_data.json), "
                                      "e.g. ../shared/data/distributional_alignment/opinions_qa/data/human_resp")
    out_dir: DataPath = Path("data/audit")


class QuestionnaireParams(Section):
    pdfs: dict[str, Path] = Field(default_factory=dict, description="wave id -> questionnaire PDF")
    out_dir: DataPath = Path("data/questionnaire")
    dpi: int = Field(200, ge=72, le=600)
    psm: int = Field(6, ge=3, le=13, description="tesseract page segmentation mode")
    reader: Literal["anchored", "layout"] = Field(
        "anchored", description="anchored: find the codebook's questions in any layout; layout: our topline's rules")
    workers: int = Field(2, ge=1, le=64, description="OCR processes (pages in parallel)")
    ocr_cache_dir: DataPath = Field(Path("data/cache/ocr"), description="finished pages, so a killed OCR resumes")
    reviews: Path | None = Field(Path("data/reviews/corrections.yaml"),
                                 description="reviewed corrections, applied last; null = none (e.g. real waves)")
    provenance_dir: DataPath = Path("data/provenance")
    correction: CorrectionParams = Field(default_factory=CorrectionParams)


def _dataset_importer(name: str) -> str:
    """A name of `opinionbench.datasets.importers` (imported here, when the section is validated, so
    that importing config stays cheap)."""
    from opinionbench.datasets import importers

    return importers.check(name)


class DatasetsParams(Section):
    """Other benchmarks imported into the two tables (stage `import-datasets`); null = import nothing."""

    distributional_alignment: Path | None = Field(
        None, description="the distributional-alignment release (e.g. ../shared/data/distributional_alignment)")
    include: list[Annotated[str, AfterValidator(_dataset_importer)]] = Field(
        default_factory=lambda: ["opinionqa_100", "opinionqa_500", "nytimes", "global_values"])
    out_dir: DataPath = Path("data/datasets")


class CalibrateParams(Section):
    """Temperature scaling of `logprobs` predictions, one T per (dataset, model, steering)."""

    calibration_fraction: float = Field(0.5, gt=0, lt=1, description="share of questions used to fit T")
    seed: int = 0
    objective: Literal["tv", "cross_entropy"] = "tv"
    predictions_dir: Path = Path("data/predictions")
    out_dir: DataPath = Path("data/calibrated/predictions")
    report: DataPath = Path("data/calibrated/temperatures.json")


class EvaluateParams(Section):
    """Leaderboards, DVC metrics/plots and figures from every predictions file found."""

    predictions_dir: Path = Path("data/predictions")
    calibrated_dir: Path = Path("data/calibrated/predictions")
    temperatures: Path = Path("data/calibrated/temperatures.json")
    out_dir: DataPath = Path("data/reports")
    bootstrap: int = Field(1000, ge=10, le=100_000, description="bootstrap resamples of the questions")
    confidence: float = Field(0.95, gt=0.5, lt=1)
    seed: int = 0
    reliability_bins: int = Field(10, ge=2, le=50)


class QuestionSampleParams(Section):
    """Which questions inference runs on: a seeded sample, so the default run stays small."""

    n: int | None = Field(12, ge=1, description="questions sampled; null = every question")
    seed: int = 0
    waves: list[str] = Field(default_factory=list, description="only these waves (e.g. [W54]); empty = all")


def _backend(name: str) -> str:
    """A name of `opinionbench.models.backends` (imported here, at validation, so importing config stays cheap)."""
    from opinionbench.models import backends

    return backends.check(name)


class _BackendKey(BaseModel):
    """The `backend` key of a `models:` entry alone: read first, it picks the class that validates the rest."""

    model_config = ConfigDict(extra="allow")

    backend: Annotated[str, AfterValidator(_backend)]


def _model_entry(value: Any, info: ValidationInfo) -> BackendSettings:
    """A `models:` entry validated by the settings class of the backend its `backend` key names.

    Why: each backend owns its knobs (`HFSettings` in models/hf.py, `OpenAISettings` in
    models/openai_backend.py), so a new backend or knob never touches this file. The backend
    module is imported here, at validation, not when config is.
    """
    from opinionbench.models import backends

    backend = _BackendKey.model_validate(value).backend
    return backends.get(backend).Settings.model_validate(value, context=info.context)


def _model_names(entries: Any) -> Any:
    """DVC names a stage's params by dotted paths (`models.<name>`): a dot inside a name would split it."""
    from pydantic_core import PydanticCustomError

    for name, entry in entries.items() if isinstance(entries, dict) else ():
        if "." in str(name):
            raise ValidationError.from_exception_data("ModelsParams", [{
                "type": PydanticCustomError(
                    "model_name", "a model name may not contain '.' (DVC splits param paths on dots); use e.g. {fix}",
                    {"fix": str(name).replace(".", "_")}),
                "loc": (str(name),), "input": entry}])
    return entries


# `{backend: <registered name>, ...that backend's settings}`: see `_model_entry`.
ModelEntry = Annotated[Any, AfterValidator(_model_entry)]


class ModelsParams(RootModel[Annotated[dict[str, ModelEntry], BeforeValidator(_model_names)]]):
    """`models:` maps a name (used in paths, leaderboards and DVC param paths) to a ModelEntry."""

    def entry(self, name: str) -> BackendSettings:
        if name not in self.root:
            raise ConfigError(f"params.yaml: models.{name}: no such model (known: {', '.join(self.root)})")
        return self.root[name]


def _method(name: str) -> str:
    """A name of `opinionbench.elicit.methods` (imported here, at validation, so importing config stays cheap)."""
    from opinionbench.elicit import methods

    return methods.check(name)


def _steering(name: str) -> str:
    """A name of `opinionbench.steering.steerings` (imported here, at validation)."""
    from opinionbench.steering import steerings

    return steerings.check(name)


def _baseline(name: str) -> str:
    """A name of `opinionbench.inference.baselines_registry` (imported here, at validation)."""
    from opinionbench.inference import baselines_registry

    return baselines_registry.check(name)


# Keys of `infer:` that moved into a method's own section; named in the error, so an old params file says where.
_MOVED = {"combine": "logprobs.combine", "verbalized_max_tokens": "verbalized.max_tokens"}


class InferParams(MethodSettings):
    """Stages `infer@<model>-<method>` and `infer-baseline@<name>`: which questions, groups, steerings and knobs.

    The knobs every method reads (`option_orders`, `seed`) are `MethodSettings`' fields; each
    method's own knobs are a section named after it (`infer.sequence.n`), validated by the
    settings class that method declares (elicit/), so a new method knob is one field there.
    """

    model_config = ConfigDict(extra="allow", frozen=True)  # the extra keys: methods' sections, checked below

    dataset: str = Field("opinionqa_xl", description="name used in prediction paths")
    dataset_dir: Path = Field(Path("data/build"), description="questions + distributions (data/build or data/datasets/<name>)")
    out_dir: DataPath = Path("data/predictions")
    parts_dir: DataPath = Field(Path("data/cache/infer"), description="chunks written as produced: a killed run resumes")
    questions: QuestionSampleParams = Field(default_factory=QuestionSampleParams)
    run: list[str] = Field(default_factory=lambda: ["smollm2"], description="models: entries the DVC matrix runs")
    baselines: list[Annotated[str, AfterValidator(_baseline)]] = Field(
        default_factory=lambda: ["uniform", "overall-prior", "similar-questions"])
    methods: list[Annotated[str, AfterValidator(_method)]] = Field(
        default_factory=lambda: ["logprobs", "verbalized", "sequence"])
    steerings: list[Annotated[str, AfterValidator(_steering)]] = Field(
        default_factory=lambda: ["none", "persona", "few-shot"])
    groups: dict[str, list[str]] | None = Field(default_factory=lambda: {"POLPARTY": ["Republican", "Democrat"]},
                                                description="attribute -> groups steered to (names as in "
                                                            "distributions); null = every group of the dataset")
    persona_style: Literal["bio", "portray"] = "bio"
    k_shots: int = Field(3, ge=1, le=20, description="few-shot examples (similar questions)")
    k_similar: int = Field(5, ge=1, le=50, description="neighbours averaged by the similar-questions baseline")
    neighbours_k: int = Field(50, ge=1, le=1000, description="neighbours kept per question by stage `neighbours` "
                              "(filters beyond them fall back to an exact row)")
    neighbours_dir: DataPath = Field(Path("data/neighbours"), description="<dataset>.parquet: the top-k table")
    baselines_on_all: bool = Field(False, description="baselines predict every question of the dataset, "
                                   "not only the `questions` sample (they are cheap)")
    chunk_size: int = Field(16, ge=1, le=10_000, description="cells per written chunk")
    max_attempts: int = Field(3, ge=1, le=100, description="a failed cell is computed again on each run until "
                              "tried this often (raise it to retry cells that failed that many times)")

    @model_validator(mode="after")
    def _sections_are_settings(self) -> InferParams:
        """Each extra key must name a registered method; its section is validated by that method's
        settings class (an error names `infer.<method>.<knob>`)."""
        from pydantic import create_model
        from pydantic_core import PydanticCustomError

        from opinionbench.elicit import methods

        extra = self.__pydantic_extra__ or {}
        for key, value in extra.items():
            if key in _MOVED:
                raise ValidationError.from_exception_data("InferParams", [{
                    "type": PydanticCustomError("moved", "moved to infer.{to}", {"to": _MOVED[key]}),
                    "loc": (key,), "input": value}])
        known = [key for key in extra if key in methods.names()]  # method names need not be identifiers: aliases
        sections = create_model("MethodSections", __base__=Section,
                                **{f"s{i}": (methods.get(key).settings, Field(alias=key)) for i, key in enumerate(known)})
        valid = sections.model_validate(extra)  # a key naming no method is an unknown key
        extra.update({key: getattr(valid, f"s{i}") for i, key in enumerate(known)})
        return self

    def method_settings(self) -> MethodSettings:
        """The knobs methods run with: the shared ones and the methods' sections given."""
        return MethodSettings(**{k: getattr(self, k) for k in MethodSettings.model_fields}, **self.sections())

    def recorded(self) -> dict[str, Any]:
        """The knobs besides the method's that shape a predictions table, under their params.yaml names."""
        out: dict[str, Any] = {}
        for name in ("dataset", "questions", "groups", "persona_style", "k_shots", "chunk_size"):
            value = getattr(self, name)
            if isinstance(value, BaseModel):
                out |= {f"infer.{name}.{k}": v for k, v in value.model_dump().items()}
            else:
                out[f"infer.{name}"] = value
        return out

    def run_plan(self) -> RunPlan:
        """What `inference.plan.run_steerings` needs, from this section."""
        from opinionbench.inference.plan import RunPlan

        return RunPlan(dataset=self.dataset, steerings=list(self.steerings), groups=self.groups,
                       settings=self.method_settings(), k_shots=self.k_shots, persona_style=self.persona_style,
                       neighbours=self.neighbours_path(), out_dir=self.out_dir, parts_dir=self.parts_dir,
                       chunk_size=self.chunk_size, max_attempts=self.max_attempts, knobs=self.recorded())

    def neighbours_path(self) -> Path:
        return self.neighbours_dir / f"{self.dataset}.parquet"


class ValidateParams(Section):
    """Stages `validate` and `validate-predictions`: the thresholds of the Great Expectations suites in `suites_dir`.

    The suites refer to these by name (`{"$PARAMETER": "min_word_share"}`), so a threshold is
    tuned here and the reviewed suite files stay unchanged.
    """

    build_dir: Path = Field(Path("data/build"), description="questions + distributions to validate")
    suites_dir: Path = Field(Path("expectations"), description="GX suites (JSON), reviewed like code")
    exclusions: Path = Field(Path("expectations/exclusions.yaml"), description="reviewed rules: items left out and why")
    out_dir: DataPath = Field(Path("data/validation"), description="Data Docs, summary.json, the validated dataset")
    min_word_share: float = Field(0.5, ge=0, le=1, description="share of dictionary words a wording needs")
    max_debris_share: float = Field(0.05, ge=0, le=1, description="share of non-text glyphs (OCR debris) allowed")
    max_options: int = Field(30, ge=2, description="most substantive options a question may have")
    probs_tolerance: float = Field(1e-6, gt=0, le=0.1, description="|sum(probs) - 1| allowed")
    min_n_eff: float = Field(30.0, ge=0, description="cells with a smaller Kish effective n are dropped and counted")
    topline_tolerance: float = Field(1.0, ge=0, description="points a printed topline may differ from the data")
    predictions_dir: Path = Field(Path("data/predictions"), description="predictions checked by `validate-predictions`")
    max_verbalized_failure_rate: float = Field(0.5, ge=0, le=1, description="unparsable verbalized replies allowed")
    max_failure_rate: float = Field(0.5, ge=0, le=1, description="failed rows allowed per predictions file, any method")

    def expectation_parameters(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in (
            "min_word_share", "max_debris_share", "max_options", "probs_tolerance", "min_n_eff",
            "topline_tolerance", "max_verbalized_failure_rate", "max_failure_rate")}


SECTIONS: dict[str, type[Section]] = {
    "data": DataParams,
    "validate": ValidateParams,
    "build": BuildParams,
    "audit": AuditParams,
    "questionnaire": QuestionnaireParams,
    "datasets": DatasetsParams,
    "calibrate": CalibrateParams,
    "evaluate": EvaluateParams,
    "tracking": TrackingParams,
    "infer": InferParams,
    "models": ModelsParams,  # type: ignore[dict-item]  (a mapping of named entries)
    "review": ReviewParams,  # Label Studio: `opinionbench review export|push|pull`
    "published": PublishedParams,  # predictions made elsewhere: `opinionbench import-predictions`
    "release": ReleaseParams,  # stage `release`: Hugging Face layout, Croissant, OpinionQA export
}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return raw


def _format_error(path: Path, section: str, exc: ValidationError, value: Any = None) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in (section, *first["loc"]))
    if first["type"] == "extra_forbidden":  # a misspelt knob: name the one meant
        known = _keys_beside(section, value, first["loc"], exc)
        return f"{path}: {key}: unknown key" + did_you_mean(str(first["loc"][-1]), known, key.rpartition(".")[0] + ".")
    got = first.get("input")
    shown = "" if isinstance(got, dict) or first["type"] == "missing" else f" (got {got!r})"
    return f"{path}: {key}: {first['msg']}{shown}"


def _keys_beside(section: str, value: Any, loc: tuple, exc: ValidationError) -> list[str]:
    """The valid keys next to an unknown one at `loc`: the section validated without its unknown
    keys, dumped with its defaults, read at loc's parent (so a backend's or method's own knobs
    count, as their own settings classes define them); [] when it still does not validate."""
    import copy

    trimmed = copy.deepcopy(value)
    for error in (e for e in exc.errors() if e["type"] == "extra_forbidden"):
        *parent, last = error["loc"]
        node = trimmed
        for part in parent:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    try:
        node = SECTIONS[section].model_validate(trimmed).model_dump(by_alias=True)
    except (ValidationError, ValueError):
        return []
    for part in loc[:-1]:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return list(node) if isinstance(node, dict) else []


def load_section(name: str, path: Path = DEFAULT_PARAMS) -> Section:
    """Validate one section of params.yaml; a bad key raises ConfigError naming `section.key`."""
    if name not in SECTIONS:
        raise ConfigError(f"unknown params section {name!r}")
    raw = _read_yaml(path)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown section{did_you_mean(unknown[0], SECTIONS)} "
                          f"(known: {', '.join(SECTIONS)})")
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {name}: must be a mapping")
    try:
        return SECTIONS[name].model_validate(value, context={"params_dir": Path(path).parent})
    except ValidationError as exc:
        raise ConfigError(_format_error(path, name, exc, value)) from None


S = TypeVar("S", bound=BaseModel)


def load(section: type[S], path: Path = DEFAULT_PARAMS) -> S:
    """The validated params.yaml section modelled by `section` (typed: no isinstance checks needed)."""
    names = [name for name, model in SECTIONS.items() if model is section]
    if not names:
        raise ConfigError(f"{section.__name__} is not a params.yaml section model")
    value = load_section(names[0], path)
    assert isinstance(value, section)
    return value

