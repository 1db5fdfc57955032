"""The pydantic models of params.yaml: the one place configuration is parsed and validated.

Each stage validates only the sections it declares in dvc.yaml (`load(BuildParams)`), so a
typo in one section never stops an unrelated stage, and every error names the exact key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, RootModel, ValidationError,
                      ValidationInfo, field_validator)

from opinionbench.errors import ConfigError

AnswerConvention = Literal["pew", "opinionqa"]  # survey/answer_classes.py: which labels are non-answers

if TYPE_CHECKING:
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


def _inside_data_dir(value: Path, info: ValidationInfo) -> Path:
    """Outputs and caches stay under the project's `data/` directory.

    Why: stages write, replace and resume files at these paths; a params file (perhaps someone
    else's) must not be able to make them write over files elsewhere (`../../.ssh`, `/etc`). The
    check is lexical (`..` and absolute paths), so a symlink the user puts inside data/ is their
    explicit choice. The data directory is `data/` beside the params file or in the working
    directory the stage runs in (relative paths resolve against the working directory).
    Read-only inputs the user opts into (`data.waves_dir`, other benchmarks) are plain `Path`s.
    """
    params_dir = Path((info.context or {}).get("params_dir", Path.cwd()))
    candidate = Path(os.path.abspath(value))
    for data_dir in {Path(os.path.abspath(params_dir / "data")), Path(os.path.abspath("data"))}:
        if candidate == data_dir or data_dir in candidate.parents:
            return value
    raise ValueError(f"path {str(value)!r} is outside the data directory ({os.path.abspath('data')})")


# An output/cache path from params.yaml: must resolve inside the project's data/ directory.
DataPath = Annotated[Path, AfterValidator(_inside_data_dir)]


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


class CorrectionParams(Section):
    """Questionnaire OCR correction; the API key is read from the environment variable named here."""

    backend: str = Field("codebook", description="a correction backend: codebook | openai | none, or one registered")
    base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible endpoint (openai backend)")
    model: str = "smollm2"
    api_key_env: str = Field("OPINIONBENCH_LLM_API_KEY", description="name of the env variable holding the key")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=16)
    response_format: Literal["json_schema", "json_object"] = Field(
        "json_schema", description="json_schema: OpenAI style; json_object: {type: json_object, schema} (llama-cpp-python)"
    )
    timeout: float = Field(60.0, gt=0, description="seconds per request")
    max_retries: int = Field(3, ge=0, le=10, description="the OpenAI client's own retries (as inference)")
    drift_threshold: float = Field(0.15, gt=0, le=1, description="max normalised edit distance OCR -> corrected")
    hint_min_similarity: float = Field(0.6, ge=0, le=1, description="corrected wording vs codebook wording")
    cache_dir: DataPath = Path("data/cache/llm")

    @field_validator("backend")
    @classmethod
    def registered_backend(cls, name: str) -> str:
        """Checked against the registry, so a new backend module needs no edit here."""
        from opinionbench.questionnaire.correct import corrections  # here: the questionnaire package imports config

        return corrections.check(name)


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


class TrackingParams(Section):
    """MLflow: SQLite store in the repo by default; MLFLOW_TRACKING_URI overrides `tracking_uri`."""

    enabled: bool = True
    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_root: Path = Field(Path("mlartifacts"), description="artifact store for experiments created here")
    experiment_prefix: str = "opinionbench"
    log_predictions: bool = Field(True, description="attach each run's predictions parquet as an artifact")
    table_rows: int = Field(2000, ge=0, le=1_000_000, description="rows of each run's per-question table "
                            "(mlflow.log_table, questions.json): question, group, predicted vs human, TV, reply")


class QuestionSampleParams(Section):
    """Which questions inference runs on: a seeded sample, so the default run stays small."""

    n: int | None = Field(12, ge=1, description="questions sampled; null = every question")
    seed: int = 0
    waves: list[str] = Field(default_factory=list, description="only these waves (e.g. [W54]); empty = all")


class SequenceParams(Section):
    n: int = Field(10, ge=1, le=200, description="answers sampled (samples) or letters asked for (letters)")
    mode: Literal["samples", "letters"] = "samples"
    temperature: float = Field(1.0, gt=0, le=2)


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


class InferParams(Section):
    """Stages `infer@<model>-<method>` and `infer-baseline@<name>`: which questions, groups, steerings and knobs."""

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
    combine: Literal["sum", "max"] = Field("sum", description="'A' and ' A' letter tokens: sum (SubPOP) or max (OpinionQA)")
    option_orders: int = Field(2, ge=1, le=26, description="cyclic option orders averaged (label-bias control)")
    sequence: SequenceParams = Field(default_factory=SequenceParams)
    verbalized_max_tokens: int = Field(80, ge=8, le=2048)
    chunk_size: int = Field(16, ge=1, le=10_000, description="cells per written chunk")
    retry_failed: bool = Field(False, description="recompute rows recorded as failed instead of keeping them")
    seed: int = 0

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

    def expectation_parameters(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in (
            "min_word_share", "max_debris_share", "max_options", "probs_tolerance", "min_n_eff",
            "topline_tolerance", "max_verbalized_failure_rate")}


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


def _format_error(path: Path, section: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in (section, *first["loc"]))
    got = first.get("input")
    shown = "" if isinstance(got, dict) or first["type"] == "missing" else f" (got {got!r})"
    return f"{path}: {key}: {first['msg']}{shown}"


def load_section(name: str, path: Path = DEFAULT_PARAMS) -> Section:
    """Validate one section of params.yaml; a bad key raises ConfigError naming `section.key`."""
    if name not in SECTIONS:
        raise ConfigError(f"unknown params section {name!r}")
    raw = _read_yaml(path)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown section (known: {', '.join(SECTIONS)})")
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {name}: must be a mapping")
    try:
        return SECTIONS[name].model_validate(value, context={"params_dir": Path(path).parent})
    except ValidationError as exc:
        raise ConfigError(_format_error(path, name, exc)) from None


S = TypeVar("S", bound=BaseModel)


def load(section: type[S], path: Path = DEFAULT_PARAMS) -> S:
    """The validated params.yaml section modelled by `section` (typed: no isinstance checks needed)."""
    names = [name for name, model in SECTIONS.items() if model is section]
    if not names:
        raise ConfigError(f"{section.__name__} is not a params.yaml section model")
    value = load_section(names[0], path)
    assert isinstance(value, section)
    return value

