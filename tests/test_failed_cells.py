"""A failure never passes for a result: a dead endpoint's cells are computed again once it is fixed
(the request key holds everything that determines an answer), a failed request is retried on the
next run up to `infer.max_attempts` times, and the stage's error line says why the cells failed.

Real parts: the `opinionbench` CLI in a subprocess, a real connection refused on 127.0.0.1:9
(nothing listens on the discard port), a real HTTP endpoint on 127.0.0.1 (fake_openai.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fake_openai import FakeOpenAI

from opinionbench.models.openai_backend import OpenAIBackend

pytestmark = pytest.mark.slow

DEAD = "http://127.0.0.1:9/v1"


def _cli(params: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opinionbench.cli", "--params", str(params), *args],
                          cwd=params.parent, capture_output=True, text=True, timeout=600)


def _params(root: Path, sample_sav: Path, base_url: str, **infer) -> Path:
    params = {
        "data": {"waves_dir": str(sample_sav.parent), "waves": ["W900"]},
        "build": {"workers": 1, "out_dir": str(root / "data" / "build")},
        "models": {"dead": {"backend": "openai", "model": "stub", "base_url": base_url, "concurrency": 1,
                            "timeout_s": 5, "max_retries": 0}},
        "infer": {"dataset_dir": str(root / "data" / "build"), "out_dir": str(root / "data" / "predictions"),
                  "parts_dir": str(root / "data" / "cache" / "infer"), "run": ["dead"], "methods": ["logprobs"],
                  "steerings": ["none"], "option_orders": 1, "groups": None, "questions": {"n": 6, "seed": 0}} | infer,
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture
def built(tmp_path, sample_sav) -> Path:
    params = _params(tmp_path, sample_sav, DEAD)
    assert _cli(params, "build").returncode == 0
    return tmp_path


def _infer(params: Path) -> subprocess.CompletedProcess:
    return _cli(params, "infer", "--model", "dead", "--method", "logprobs", "--no-progress")


def test_a_dead_endpoint_names_its_cause_and_once_fixed_its_cells_are_computed_again(built, sample_sav):
    params = _params(built, sample_sav, DEAD)
    dead = _infer(params)
    assert dead.returncode == 2, dead.stdout + dead.stderr
    [error] = [line for line in dead.stderr.splitlines() if line.startswith("error:")]
    assert error == f"error: dead logprobs: 6 of 6 cells failed: {DEAD}: cannot connect (connection refused)"
    assert "Traceback" not in dead.stderr
    with FakeOpenAI() as endpoint:
        fixed = _infer(_params(built, sample_sav, endpoint.url))
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert "6 cells, 6 computed, 0 reused, 0 failed" in fixed.stdout, fixed.stdout
        assert len(endpoint.requests) == 6
    [table] = (built / "data" / "predictions").rglob("*.parquet")
    assert not pd.read_parquet(table)["failed"].any()


def test_a_failed_request_is_tried_again_on_each_run_up_to_max_attempts(built, sample_sav):
    params = _params(built, sample_sav, DEAD, max_attempts=2)
    assert _infer(params).returncode == 2
    second = _infer(params)  # the same dead endpoint: tried again (attempt 2 of 2)
    assert "6 computed (6 tried again), 0 reused, 6 failed" in second.stdout, second.stdout
    third = _infer(params)  # tried twice already: kept as failed, and the stage says how to retry
    assert "0 computed, 6 reused, 6 failed" in third.stdout, third.stdout
    assert "6 failed requests not tried again: tried infer.max_attempts (2) times already" in third.stdout
    assert third.returncode == 2 and "cannot connect (connection refused)" in third.stderr


@pytest.fixture(scope="module")
def sample(sample_sav):
    from opinionbench.survey.build import build_waves

    built = build_waves([sample_sav], workers=1)
    return built.questions, built.distributions


def _hash_with(sample, tmp_path: Path, **settings) -> str:
    from opinionbench.elicit.base import MethodSettings
    from opinionbench.inference.cells import cells_to_predict
    from opinionbench.inference.runner import InferenceRun
    from opinionbench.steering.base import SteeringData

    questions, distributions = sample
    backend = OpenAIBackend("stub", **({"base_url": DEAD} | settings))
    try:
        run = InferenceRun(backend, "logprobs", "none", questions, SteeringData(questions, distributions, k_shots=2),
                           MethodSettings(option_orders=1), dataset="sample", out_path=tmp_path / "p.parquet",
                           parts_dir=tmp_path / "parts")
        [cell] = cells_to_predict(distributions, sorted(questions["qkey"])[:1], None, steering="none")
        return run.request_hash(run.item(cell))
    finally:
        backend.close()


def test_the_request_key_holds_the_endpoint_and_every_request_field_but_not_how_requests_are_sent(sample, tmp_path):
    plain = _hash_with(sample, tmp_path)
    for changed in ({"base_url": "http://127.0.0.1:10/v1"}, {"top_logprobs": 5}, {"response_format": "none"},
                    {"strict": False}, {"samples_via_n": True}, {"extra_body": {"grammar": "root ::= \"A\""}}):
        assert _hash_with(sample, tmp_path, **changed) != plain, changed
    for same in ({"concurrency": 8}, {"timeout_s": 1.0}, {"max_retries": 0}, {"base_url": DEAD + "/"}):
        assert _hash_with(sample, tmp_path, **same) == plain, same
