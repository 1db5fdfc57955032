"""A plug-in of each inference seam is one module: a toy model backend (settings + class), a toy
elicitation method and a toy steering, each selected by name through the path the `infer` stage
takes: params validation accepts the names, then `opinionbench infer` runs the inference library
on the embedded sample wave with the toy backend and writes predictions. No real model.

The three toys below are written as a plug-in author writes them (one module each in real
life); the `toys` fixture registers them for one test only, so the session's registries stay as
shipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from prediction_checks import check_alignment
from pydantic import Field

from opinionbench.cli import main
from opinionbench.config import InferParams, ModelsParams, load
from opinionbench.elicit import methods
from opinionbench.elicit.base import Item, Method, MethodSettings, Result, Settings, failed, orders_for, question_prompt
from opinionbench.errors import ConfigError
from opinionbench.inference.predictions import prediction_path, read_predictions, run_metadata
from opinionbench.io import write_parquet
from opinionbench.models import backends
from opinionbench.models.base import Backend, BackendSettings, Failure, GenerationRequest, NextToken, Prompt
from opinionbench.prompting import letters, to_original
from opinionbench.steering import steerings
from opinionbench.steering.base import Context, SteeringData
from opinionbench.steering.templates import templates_hash

REPO = Path(__file__).resolve().parents[1]


# --- toy model backend: it owns its settings, like hf.py and openai_backend.py --------------------

class ToySettings(BackendSettings):
    answer: str = Field("A", pattern="^[A-Z]$", description="the letter this model always picks")


class ToyBackend(Backend):
    Settings = ToySettings

    def __init__(self, model: str, *, revision: str | None = None, answer: str = "A") -> None:
        self.model_id, self.revision, self.answer = model, revision or "toy-1", answer
        self.closed = False

    def next_token_logprobs(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[NextToken | Failure]:
        return [NextToken({c: 0.0 if c.strip() == self.answer else -20.0 for c in candidates}, exhaustive=True)
                for _ in prompts]

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str] | Failure]:
        return [[self.answer] * r.n for r in requests]

    def close(self) -> None:
        self.closed = True


# --- toy elicitation method: the letter of a short greedy reply; it owns its settings, like sequence.py --

TOY_TEMPLATE = "question_logprobs.txt"


class ToyFirstLetterSettings(Settings):
    """params.yaml `infer.toy-first-letter:`."""

    reply_tokens: int = Field(1, ge=1, le=4, description="tokens of the reply whose first letter is the answer")


def toy_prompts(item: Item, settings: MethodSettings) -> list[Prompt]:
    return [question_prompt(item, order, TOY_TEMPLATE) for order in orders_for(item, settings)]


def toy_run(backend: Backend, items: Sequence[Item], settings: MethodSettings) -> list[Result]:
    per_item = [toy_prompts(item, settings) for item in items]
    budget = settings.of(ToyFirstLetterSettings).reply_tokens
    replies = iter(backend.generate([GenerationRequest(p, max_tokens=budget) for ps in per_item for p in ps]))
    results = []
    for item, ps in zip(items, per_item):
        got = [next(replies) for _ in ps]
        if any(isinstance(r, Failure) or r[0] not in letters(len(item.options)) for r in got):
            results.append(failed(f"{item.qkey}: no option letter", json.dumps([str(r) for r in got])))
            continue
        one_hot = [np.eye(len(item.options))[letters(len(item.options)).index(r[0])] for r in got]
        probs = np.mean([to_original(p, o) for p, o in zip(one_hot, orders_for(item, settings))], axis=0)
        results.append(Result(list(probs), raw_reply=json.dumps([r[0] for r in got])))
    return results


TOY_METHOD = Method(toy_prompts, toy_run, templates=(TOY_TEMPLATE,), settings=ToyFirstLetterSettings)


# --- toy steering: the group named in the system prompt ----------------------------------------------

def toy_crowd(data: SteeringData, qkey: str, attribute: str, group: str) -> Context:
    return Context(f"Answer as a crowd of {group} people would.", "people like them", templates_hash("system.txt"),
                   ("system.txt",))


@pytest.fixture
def toys(monkeypatch):
    for registry in (backends, methods, steerings):
        for name in registry.names():  # load the built-ins first: the copy below must hold them
            registry.get(name)
        monkeypatch.setattr(registry, "_items", dict(registry._items))
    backends.register("toy")(ToyBackend)
    methods.register("toy-first-letter")(TOY_METHOD)
    steerings.register("toy-crowd")(toy_crowd)


@pytest.fixture(scope="module")
def sample_dataset(sample_sav, tmp_path_factory) -> Path:
    from opinionbench.survey.build import build_waves

    built = build_waves([sample_sav], workers=1)
    root = tmp_path_factory.mktemp("dataset")
    write_parquet(built.questions, root / "questions.parquet")
    write_parquet(built.distributions, root / "distributions.parquet")
    return root


def _params(root: Path, dataset: Path, **models: dict) -> Path:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump({
        "models": models or {"toy": {"backend": "toy", "model": "toy-model", "answer": "B"}},
        "infer": {"dataset": "sample", "dataset_dir": str(dataset), "questions": {"n": 3, "seed": 0},
                  "methods": ["toy-first-letter"], "steerings": ["none", "toy-crowd"],
                  "groups": {"POLPARTY": ["Republican"]}, "option_orders": 1},
    }))
    return path


def test_params_validation_accepts_each_registered_toy_by_name(toys, sample_dataset, tmp_path):
    params = _params(tmp_path, sample_dataset)
    entry = load(ModelsParams, params).entry("toy")
    assert isinstance(entry, ToySettings) and entry.answer == "B"
    infer = load(InferParams, params)
    assert infer.methods == ["toy-first-letter"] and infer.steerings == ["none", "toy-crowd"]
    # the toy's own knob is validated by its own settings class, and the error names the key
    bad = _params(tmp_path, sample_dataset, toy={"backend": "toy", "model": "m", "answer": "not a letter"})
    with pytest.raises(ConfigError, match=r"params.yaml: models\.toy\.answer: "):
        load(ModelsParams, bad)


def test_the_infer_stage_runs_the_toys_on_the_sample_wave(toys, sample_dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    params = _params(tmp_path, sample_dataset)
    assert main(["--params", str(params), "infer", "--model", "toy", "--method", "toy-first-letter",
                 "--no-progress"]) == 0
    assert "toy toy-first-letter/toy-crowd: 3 cells, 3 computed" in capsys.readouterr().out
    questions = pd.read_parquet(sample_dataset / "questions.parquet")
    for steering, group in (("none", "Overall"), ("toy-crowd", "Republican")):
        preds = read_predictions(prediction_path("sample", "toy", "toy-first-letter", steering, Path("data/predictions")))
        assert len(preds) == 3 and not preds["failed"].any() and (preds["group"] == group).all()
        assert (preds["model_id"] == "toy-model").all() and (preds["model_revision"] == "toy-1").all()
        check_alignment(preds, questions)
        assert all(p[1] == 1.0 for p in preds["probs"])  # the toy always answers B


def test_unknown_names_are_one_line_errors_naming_the_key(tmp_path, sample_dataset):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"infer": {"methods": ["logprobs", "telepathy"]}}))
    with pytest.raises(ConfigError, match=r"infer\.methods\.1: .*unknown elicitation method 'telepathy'"):
        load(InferParams, params)
    params.write_text(yaml.safe_dump({"models": {"m": {"backend": "carrier-pigeon", "model": "x"}}}))
    with pytest.raises(ConfigError, match=r"models\.m\.backend: .*unknown model backend 'carrier-pigeon'"):
        load(ModelsParams, params)
    params.write_text(yaml.safe_dump({"models": {"smollm2": {"backend": "hf", "model": "embedded:smollm2",
                                                             "batch_size": 0}}}))
    with pytest.raises(ConfigError, match=r"params.yaml: models\.smollm2\.batch_size: "):
        load(ModelsParams, params)
    params.write_text(yaml.safe_dump({"models": {"smollm2": {"backend": "openai", "model": "m",
                                                             "base_url": "http://127.0.0.1:9/v1", "batch_size": 8}}}))
    with pytest.raises(ConfigError, match=r"models\.smollm2\.batch_size: unknown key"):
        load(ModelsParams, params)  # an hf knob on an openai entry is a misplaced knob, not ignored


def test_a_model_name_with_a_dot_is_one_clear_line(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"models": {"qwen2.5": {"backend": "hf", "model": "Qwen/Qwen2.5-0.5B"}}}))
    with pytest.raises(ConfigError) as info:
        load(ModelsParams, params)
    assert str(info.value) == (f"{params}: models.qwen2.5: a model name may not contain '.' "
                               "(DVC splits param paths on dots); use e.g. qwen2_5")


def test_validating_models_and_choosing_the_openai_backend_never_import_torch(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"models": {
        "local": {"backend": "hf", "model": "embedded:smollm2", "batch_size": 4},
        "server": {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}}}))
    code = ("import sys; from pathlib import Path; from opinionbench.config import ModelsParams, load; "
            "from opinionbench.models import load_backend; m = load(ModelsParams, Path(sys.argv[1])); "
            "load_backend(m.entry('server')).close(); "
            "assert m.entry('local').batch_size == 4; print(sorted(k for k in sys.modules if k.split('.')[0] == 'torch'))")
    result = subprocess.run([sys.executable, "-c", code, str(params)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_question_with_more_options_than_letters_is_a_recorded_failure(toys, sample_dataset, tmp_path, monkeypatch):
    """Real waves hold coded lists of up to 29 options (validation allows 30): such a question
    must become a failed row naming why, not crash the request hashing of the whole run, and
    few-shot steering must never pick it as an example."""
    questions = pd.read_parquet(sample_dataset / "questions.parquet")
    distributions = pd.read_parquet(sample_dataset / "distributions.parquet")
    wide = questions["qkey"].iloc[0]
    options = [f"Option {i}" for i in range(27)]
    questions["options"] = [options if q == wide else list(o) for q, o in zip(questions["qkey"], questions["options"])]
    questions["ordinal"] = [list(map(float, range(1, 28))) if q == wide else list(o)
                            for q, o in zip(questions["qkey"], questions["ordinal"])]
    is_wide = distributions["qkey"] == wide
    distributions.loc[is_wide, "probs"] = pd.Series([[1 / 27] * 27] * int(is_wide.sum()),
                                                    index=distributions.index[is_wide])
    root = tmp_path / "wide"
    write_parquet(questions, root / "questions.parquet")
    write_parquet(distributions, root / "distributions.parquet")
    monkeypatch.chdir(tmp_path)
    params = _params(tmp_path, root)
    raw = yaml.safe_load(params.read_text())
    raw["infer"].update({"questions": {"n": None}, "methods": ["logprobs"], "steerings": ["none", "few-shot"]})
    params.write_text(yaml.safe_dump(raw))
    assert main(["--params", str(params), "infer", "--model", "toy", "--method", "logprobs", "--no-progress"]) == 0
    none = read_predictions(prediction_path("sample", "toy", "logprobs", "none", Path("data/predictions")))
    row = none.set_index("qkey").loc[wide]
    assert row["failed"] and "27 options" in row["error"]
    assert not none[none["qkey"] != wide]["failed"].any()
    data = SteeringData(questions, distributions, k_shots=len(questions))
    assert wide not in data.example_pool("POLPARTY", "Republican")


def test_a_method_knob_is_one_field_from_params_to_the_predictions(toys, sample_dataset, tmp_path, monkeypatch,
                                                                     capsys):
    """`ToyFirstLetterSettings.reply_tokens` above is all a method knob takes: params.yaml takes it under
    the method's name (a bad value is an error naming that key), the run uses it, records it under the
    same name in the predictions metadata (what MLflow logs as params), and hashes it into the method's
    requests, so a changed value computes the cells again and an unchanged one reuses them."""
    monkeypatch.chdir(tmp_path)
    params = _params(tmp_path, sample_dataset)
    raw = yaml.safe_load(params.read_text())

    def run(knob: object) -> str:
        raw["infer"]["toy-first-letter"] = {"reply_tokens": knob}
        params.write_text(yaml.safe_dump(raw))
        assert main(["--params", str(params), "infer", "--model", "toy", "--method", "toy-first-letter",
                     "--no-progress"]) == 0
        return capsys.readouterr().out

    with pytest.raises(ConfigError, match=r"params.yaml: infer\.toy-first-letter\.reply_tokens: .*less than or equal"):
        raw["infer"]["toy-first-letter"] = {"reply_tokens": 9}
        params.write_text(yaml.safe_dump(raw))
        load(InferParams, params)
    assert "toy toy-first-letter/none: 3 cells, 3 computed" in run(2)
    frame = pd.read_parquet(prediction_path("sample", "toy", "toy-first-letter", "none", Path("data/predictions")))
    recorded = run_metadata(frame)
    assert recorded["infer.toy-first-letter.reply_tokens"] == 2 and recorded["infer.option_orders"] == 1
    assert "toy toy-first-letter/none: 3 cells, 0 computed, 3 reused" in run(2)
    assert "toy toy-first-letter/none: 3 cells, 3 computed" in run(3)
    # a knob without a `serialization_alias` is in its own method's hash only: the built-ins' stay as they were
    settings = load(InferParams, params).method_settings()
    assert "toy-first-letter.reply_tokens" not in settings.request_key("logprobs", {"toy-first-letter": ToyFirstLetterSettings})
    assert settings.request_key("toy-first-letter", {"toy-first-letter": ToyFirstLetterSettings})[
        "toy-first-letter.reply_tokens"] == 3
