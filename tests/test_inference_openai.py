"""The `openai` backend against a real OpenAI-compatible server (llama.cpp serving the embedded
SmolLM2 GGUF on 127.0.0.1, the `llama_server` fixture of conftest.py), and against endpoints
that answer 500 or garbage: failures are recorded rows, what was computed before is kept,
and the API key (from the environment) never reaches a log or an output file.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_openai import Reply, completion, deterministic_reply
from prediction_checks import check_alignment

from opinionbench.elicit.base import MethodSettings
from opinionbench.elicit.sequence import SequenceSettings
from opinionbench.elicit.verbalized import VerbalizedSettings
from opinionbench.inference.cost import read_cost
from opinionbench.inference.predictions import read_predictions
from opinionbench.inference.cells import cells_to_predict, sample_questions
from opinionbench.inference.runner import InferenceRun
from opinionbench.steering.base import SteeringData
from opinionbench.survey.build import build_waves

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "sk-inference-test-SECRET-42"
KEY_ENV = "OB_INFERENCE_TEST_KEY"


@pytest.fixture(scope="module")
def sample(sample_sav):
    built = build_waves([sample_sav], workers=1)
    return built.questions, built.distributions


def _backend(url: str, **kw):
    from opinionbench.models.openai_backend import OpenAIBackend

    # llama.cpp's server takes the verbalized schema as response_format json_object + schema
    return OpenAIBackend("smollm2", base_url=url, api_key_env=KEY_ENV, response_format="json_object",
                         **({"concurrency": 2, "timeout_s": 60, "max_retries": 1} | kw))


def _run(backend, method, steering, sample, qkeys, root: Path, settings: MethodSettings):
    questions, distributions = sample
    run = InferenceRun(backend, method, steering, questions, SteeringData(questions, distributions, k_shots=2),
                       settings, dataset="sample", out_path=root / "predictions" / f"{method}-{steering}.parquet",
                       parts_dir=root / "parts" / method / steering, chunk_size=1)
    summary = run.run(cells_to_predict(distributions, qkeys, {"POLPARTY": ["Democrat"]}, steering=steering), progress=False)
    return summary, read_predictions(summary.path)


def _no_secret(caplog, capsys, root: Path) -> None:
    assert SECRET not in caplog.text
    out = capsys.readouterr()
    assert SECRET not in out.out and SECRET not in out.err
    for path in root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_real_server_logprobs_and_generation_methods(llama_server, sample, tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpcore", "opinionbench"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    questions, _ = sample
    qkeys = sample_questions(questions, 2, seed=0)
    backend = _backend(llama_server)
    try:
        summary, logprobs = _run(backend, "logprobs", "persona", sample, qkeys, tmp_path, MethodSettings(option_orders=2))
        _, verbalized = _run(backend, "verbalized", "none", sample, qkeys, tmp_path,
                             MethodSettings(option_orders=1, verbalized=VerbalizedSettings(max_tokens=60)))
        _, sequence = _run(backend, "sequence", "none", sample, qkeys, tmp_path,
                           MethodSettings(option_orders=1, sequence=SequenceSettings(n=3)))
    finally:
        backend.close()
    assert summary.computed == 2 and not logprobs["failed"].any(), logprobs["error"].tolist()
    for frame in (logprobs, verbalized, sequence):
        check_alignment(frame, questions)
        assert (frame["model_id"] == "smollm2").all() and (frame["model_revision"] == "endpoint").all()
    # top_logprobs: the letters were read from the top-k (fill rule where one is missing)
    assert logprobs["out_of_option_mass"].map(lambda m: 0.0 <= m < 1.0).all()
    assert all(math.isclose(p.sum(), 1.0, abs_tol=1e-9) for p in logprobs["probs"])
    # the server enforces the JSON schema (response_format): every reply is a distribution
    assert not verbalized["failed"].any(), verbalized["raw_reply"].tolist()
    for row in verbalized.itertuples(index=False):
        reply = json.loads(row.raw_reply)
        letters = sorted(reply)
        assert len(letters) == len(row.probs)
        np.testing.assert_allclose(row.probs, np.array([reply[k] for k in letters]) / sum(reply.values()), atol=1e-9)
    assert (~sequence["failed"]).sum() >= 1 and sequence["raw_reply"].notna().all()
    _no_secret(caplog, capsys, tmp_path)


@pytest.mark.parametrize("status,body,needle", [
    (500, b'{"error": {"message": "internal error"}}', "HTTP 500"),
    (200, b"<html>certainly not JSON</html>", "unusable reply"),
    (200, b'{"id": "x", "choices": []}', "unusable reply"),
])
def test_an_endpoint_answering_500_or_garbage_is_a_recorded_failure_and_nothing_computed_is_lost(
        fake_openai, sample, tmp_path, monkeypatch, status, body, needle):
    monkeypatch.setenv(KEY_ENV, SECRET)
    questions, _ = sample
    three = sample_questions(questions, 3, seed=2)
    settings = MethodSettings(option_orders=1)
    broken = {"now": False}  # one endpoint (the same request key), answering well, then badly
    bad_endpoint = fake_openai(reply=lambda sent: Reply(status, body) if broken["now"] else deterministic_reply(sent))
    good = _backend(bad_endpoint.url, max_retries=0)
    try:
        first, before = _run(good, "logprobs", "none", sample, three[:2], tmp_path, settings)
        assert first.computed == 2 and not before["failed"].any()
        broken["now"], asked = True, len(bad_endpoint.requests)
        second, after = _run(good, "logprobs", "none", sample, three, tmp_path, settings)
    finally:
        good.close()
    assert (second.computed, second.reused, second.failed) == (1, 2, 1) and len(bad_endpoint.requests) == asked + 1
    by_q = after.set_index("qkey")
    error = by_q.loc[three[2], "error"]
    assert by_q.loc[three[2], "failed"] and needle in error and bad_endpoint.url in error and "\n" not in error
    for q in three[:2]:  # the rows computed with the good endpoint are all still there
        np.testing.assert_array_equal(by_q.loc[q, "probs"], before.set_index("qkey").loc[q, "probs"])
    assert SECRET not in error


def test_extra_body_reaches_the_engine_and_changes_the_revision(llama_server, monkeypatch):
    """`extra_body` (here llama.cpp's GBNF `grammar`) is sent with every request; the backend's
    revision names it, so cached cells made without it are not reused."""
    from opinionbench.models.base import GenerationRequest, Prompt

    monkeypatch.setenv(KEY_ENV, SECRET)
    constrained = _backend(llama_server, extra_body={"grammar": 'root ::= "maybe" | "perhaps"'})
    plain = _backend(llama_server)
    prompt = Prompt((("user", "Answer yes or no: is the sky blue?"),))
    [texts] = constrained.generate([GenerationRequest(prompt, max_tokens=6, n=2, seed=1, temperature=1.0)])
    assert all(t.strip() in {"maybe", "perhaps"} for t in texts), texts
    assert constrained.tokens_processed > 0 and plain.tokens_processed == 0  # the endpoint's reported usage
    assert constrained.revision.startswith(plain.revision + "+extra_body:") and constrained.revision != plain.revision


def _fixed_reply(body: dict) -> dict:
    """"A" with fixed log-probs and usage (10 + 1 tokens), one choice per sample asked for with `n`."""
    return completion("A", {"A": -0.5, "B": -1.2}, n=int(body.get("n") or 1), usage=(10, 1))


def test_sequence_samples_in_one_request_with_n_where_the_server_supports_it(fake_openai, monkeypatch):
    from opinionbench.models.base import GenerationRequest, Prompt

    monkeypatch.setenv(KEY_ENV, SECRET)
    endpoint = fake_openai(reply=_fixed_reply)
    request = GenerationRequest(Prompt((("user", "Pick A or B."),)), max_tokens=2, temperature=1.0, n=5, seed=3)
    with_n, without = _backend(endpoint.url, samples_via_n=True), _backend(endpoint.url)
    [texts] = with_n.generate([request])
    assert texts == ["A"] * 5 and len(endpoint.requests) == 1
    [texts] = without.generate([request])
    assert texts == ["A"] * 5 and len(endpoint.requests) == 1 + 5  # one seeded request per sample
    assert with_n.revision == without.revision + "+n"  # other sampling streams: other cells


def test_requests_stay_in_flight_across_chunks_and_each_chunk_meters_its_tokens(fake_openai, sample, tmp_path,
                                                                               monkeypatch):
    """chunk_size 1 used to mean one request at a time; now `concurrency` requests are in flight
    across chunks, each chunk still written on its own, and tokens are counted per cell exactly."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    questions, _ = sample
    six = sample_questions(questions, 6, seed=3)
    endpoint = fake_openai(reply=_fixed_reply, delay=0.4)
    backend = _backend(endpoint.url, concurrency=8)
    try:
        summary, preds = _run(backend, "logprobs", "none", sample, six, tmp_path, MethodSettings(option_orders=1))
    finally:
        backend.close()
    assert summary.computed == summary.cells == len(preds) == 6 and not preds["failed"].any()
    assert endpoint.most >= 4, endpoint.most
    assert len(list((tmp_path / "parts" / "logprobs" / "none").glob("part-*.parquet"))) == 6
    assert read_cost(tmp_path / "parts" / "logprobs" / "none")["infer_tokens"] == 6 * 11


def test_chunks_in_flight_fill_the_backend_pool_plus_one_queued_chunk():
    """A local model takes one chunk at a time; a server's pool is filled, with one chunk more
    queued behind it so writing a finished chunk never leaves the server idle."""
    from opinionbench.inference.runner import chunks_in_flight

    assert chunks_in_flight(1, 16) == 1
    assert chunks_in_flight(4, 16) == 2
    assert chunks_in_flight(32, 16) == 3
    assert chunks_in_flight(8, 1) == 9


def test_one_bounded_pool_of_requests_across_chunks(fake_openai, sample, tmp_path, monkeypatch):
    """More chunks are in flight than the server takes, yet the requests in flight never exceed
    `concurrency` (the backend's one pool), and every chunk is still its own part file."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    questions, distributions = sample
    nine = sample_questions(questions, 9, seed=4)
    endpoint = fake_openai(reply=_fixed_reply, delay=0.2)
    backend = _backend(endpoint.url, concurrency=3)
    try:
        run = InferenceRun(backend, "logprobs", "none", questions, SteeringData(questions, distributions),
                           MethodSettings(option_orders=1), dataset="sample", out_path=tmp_path / "p.parquet",
                           parts_dir=tmp_path / "parts", chunk_size=2)
        summary = run.run(cells_to_predict(distributions, nine, {}, steering="none"), progress=False)
    finally:
        backend.close()
    assert summary.computed == summary.cells == 9 and summary.failed == 0
    assert endpoint.most == 3, endpoint.most  # filled, and never more than the pool
    assert len(list((tmp_path / "parts").glob("part-*.parquet"))) == 5


def test_parts_written_by_pandas_before_read_as_the_runners_own_and_are_reused(fake_openai, sample, tmp_path,
                                                                              monkeypatch):
    """The runner writes its parts with pyarrow straight from the rows (cheaper per chunk than a
    DataFrame); parts written the earlier way (`pd.DataFrame(rows).to_parquet`, a failed row among
    them) load to the same rows, and a rerun over them reuses every answered cell."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    questions, _ = sample
    four = sample_questions(questions, 4, seed=5)
    endpoint = fake_openai(reply=lambda sent: Reply(500, b"{}") if len(endpoint.requests) == 2
                           else deterministic_reply(sent))  # the second request fails: a failed row in a part
    backend = _backend(endpoint.url, max_retries=0)
    parts = tmp_path / "parts" / "logprobs" / "none"
    try:
        first, _ = _run(backend, "logprobs", "none", sample, four, tmp_path, MethodSettings(option_orders=1))
        run = InferenceRun(backend, "logprobs", "none", questions, SteeringData(questions, sample[1]),
                           MethodSettings(option_orders=1), dataset="sample", out_path=tmp_path / "unused.parquet",
                           parts_dir=parts)
        own = run._load_parts()
        for part in parts.glob("part-*.parquet"):  # rewritten as the runner wrote them before
            pd.DataFrame(pd.read_parquet(part).to_dict("records")).to_parquet(part, index=False)
        earlier = run._load_parts()
        for key in ("attempts", "tokens"):  # the rerun below must not take the endpoint's failure for a new try
            assert [r[key] for r in own.values()] == [r[key] for r in earlier.values()]
        asked = len(endpoint.requests)
        again, _ = _run(backend, "logprobs", "none", sample, four, tmp_path, MethodSettings(option_orders=1))
    finally:
        backend.close()
    assert first.failed == 1 and (again.reused, again.computed) == (3, 1)  # only the failed cell is tried again
    assert len(endpoint.requests) == asked + 1
    assert own.keys() == earlier.keys()
    for digest, row in own.items():
        other = earlier[digest]
        assert row.keys() == other.keys()
        for key, value in row.items():
            if key == "probs":
                np.testing.assert_array_equal(value, other[key])
            elif isinstance(value, float) and math.isnan(value):
                assert math.isnan(other[key]), key
            else:
                assert value == other[key] and type(value) is type(other[key]), (key, value, other[key])
