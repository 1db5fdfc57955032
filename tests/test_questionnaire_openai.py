"""The `openai` correction backend: the fake endpoint for error cases, a real llama.cpp server end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fake_openai import completion

from opinionbench.config import CorrectionParams
from opinionbench.questionnaire.correct import Hint, make_backend
from opinionbench.questionnaire.errors import CorrectionError
from opinionbench.questionnaire.pipeline import correct_blocks
from opinionbench.questionnaire.segment import Block

REPO = Path(__file__).resolve().parents[1]
SAMPLE_PDF = REPO / "data" / "sample" / "W900_questionnaire.pdf"
GOOD = json.dumps({"question": "How often do you get news from social media?", "options": ["Often", "Never"]})


@pytest.fixture
def stub(fake_openai):
    """The fake endpoint (conftest), answering the GOOD correction unless its script says otherwise."""
    return fake_openai(reply=lambda body: completion(GOOD))


def _block(**kw) -> Block:
    base = dict(qcode="SOCNEWS", routing="ASK ALL", wording="How 0ften do you get news from social rnedia?",
                options=["Often", "Nevcr"], percents=["40", "59"], page=2, bbox=[1, 2, 3, 4], dpi=200,
                confidence=80.0, min_confidence=40.0, ocr_text="SOCNEWS. How 0ften ...")
    return Block(**(base | kw))


HINT = Hint("SOCNEWS", "How often do you get news from social media?", ["Often", "Never"])


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Caches must live under a `data/` directory (config.DataPath): work in a scratch one."""
    monkeypatch.chdir(tmp_path)


def _params(url: str, tmp_path: Path, **kw) -> CorrectionParams:
    return CorrectionParams(backend="openai", base_url=url, model="stub", timeout=2, max_retries=2,
                            cache_dir=tmp_path / "data" / "llm", **kw)


def test_schema_reply_is_validated_cached_and_replayed(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("OPINIONBENCH_LLM_API_KEY", "sk-secret-test-key")
    params = _params(stub.url, tmp_path)
    backend = make_backend("openai", params)
    first = backend.correct(_block(), HINT)
    assert first.question == "How often do you get news from social media?" and first.cache_key
    sent = stub.requests[0]
    assert sent["temperature"] == 0 and sent["response_format"]["type"] == "json_schema"
    assert "codebook_hint" in sent["messages"][1]["content"]
    assert stub.headers[0]["authorization"] == "Bearer sk-secret-test-key"
    entries = list((tmp_path / "data" / "llm").rglob("*.json"))
    assert len(entries) == 1 and "sk-secret" not in entries[0].read_text()
    assert stub.url not in entries[0].read_text()
    stub.close()  # the endpoint is gone: the same request replays from the cache
    again = make_backend("openai", params).correct(_block(), HINT)
    assert again.question == first.question and again.cache_key == first.cache_key
    assert "replayed from cache" in again.notes
    # a different OCR text is a different request: a different key
    other = make_backend("openai", params)
    assert other.request(_block(wording="x"), HINT) != other.request(_block(), HINT)


def test_429_retry_after_is_honoured(stub, tmp_path):
    stub.script = [("429", 1), ("ok", GOOD)]
    start = time.monotonic()
    result = make_backend("openai", _params(stub.url, tmp_path)).correct(_block(), HINT)
    assert time.monotonic() - start >= 0.95, "Retry-After: 1 must be waited out"
    assert len(stub.requests) == 2 and result.options == ["Often", "Never"]


def test_server_errors_are_retried_then_recover(stub, tmp_path):
    stub.script = [("status", 500), ("status", 503)]
    result = make_backend("openai", _params(stub.url, tmp_path)).correct(_block(), HINT)
    assert len(stub.requests) == 3 and result.options == ["Often", "Never"]


def test_server_errors_beyond_retries_become_one_line_error(stub, tmp_path):
    stub.script = [("status", 500)] * 3
    with pytest.raises(CorrectionError) as info:
        make_backend("openai", _params(stub.url, tmp_path)).correct(_block(), HINT)
    message = str(info.value)
    assert message.startswith(f"SOCNEWS (page 2): {stub.url}: InternalServerError after 3 attempts")
    assert "\n" not in message and len(stub.requests) == 3


def test_a_client_error_is_not_retried(stub, tmp_path):
    stub.script = [("status", 400)]
    with pytest.raises(CorrectionError, match=r"SOCNEWS \(page 2\): .*: HTTP 400"):
        make_backend("openai", _params(stub.url, tmp_path)).correct(_block(), HINT)
    assert len(stub.requests) == 1


def test_timeout_becomes_one_line_error_after_retries(stub, tmp_path):
    stub.script = [("sleep", 1.5)] * 3
    params = _params(stub.url, tmp_path, ).model_copy(update={"timeout": 0.3, "max_retries": 1})
    with pytest.raises(CorrectionError, match=r"SOCNEWS \(page 2\): .*APITimeoutError after 2 attempts"):
        make_backend("openai", params).correct(_block(), HINT)


def test_reply_that_is_not_the_schema_goes_to_review(stub, tmp_path):
    stub.script = [("ok", "Sure! Here is the corrected question: How often...")]
    params = _params(stub.url, tmp_path)
    frame = correct_blocks([_block()], wave_id="W900", backend=make_backend("openai", params), params=params,
                           hints={"SOCNEWS": HINT}, progress=False)
    row = frame.iloc[0]
    assert row["status"] == "needs_review"
    assert "not the CorrectedQuestion schema" in row["review_reasons"][0]
    assert row["question"] == _block().wording


def test_unreachable_endpoint_is_isolated_per_question(tmp_path):
    params = _params("http://127.0.0.1:9/v1", tmp_path).model_copy(update={"max_retries": 0})
    frame = correct_blocks([_block(), _block(qcode="OTHER")], wave_id="W900", backend=make_backend("openai", params),
                           params=params, hints={"SOCNEWS": HINT}, progress=False)
    assert len(frame) == 2 and (frame["status"] == "needs_review").all()
    assert "APIConnectionError" in frame.iloc[0]["review_reasons"][0]


@pytest.mark.integration
@pytest.mark.slow
def test_real_llama_server_then_replay_without_it(llama_server, sample_sav, tmp_path):
    """SmolLM2 behind llama.cpp's OpenAI-compatible server corrects two sample questions; then replay."""
    from opinionbench.questionnaire.ocr import ocr_pdf
    from opinionbench.questionnaire.pipeline import wave_hints
    from opinionbench.questionnaire.segment import segment
    from opinionbench.survey import load_wave

    blocks = [b for b in segment(ocr_pdf(SAMPLE_PDF, cache_dir=tmp_path / "ocr", progress=False, pages=[1]))
              if b.qcode in {"ECONRATE", "CLIMATE"}]
    hints = wave_hints(load_wave(sample_sav))
    params = CorrectionParams(backend="openai", base_url=llama_server, model="smollm2", timeout=120,
                              response_format="json_object",
                              max_retries=1, cache_dir=tmp_path / "data" / "llm")
    live = correct_blocks(blocks, wave_id="W900", backend=make_backend("openai", params), params=params,
                          hints=hints, progress=False)
    assert len(live) == 2 and live["cache_key"].notna().all()
    assert len(list((tmp_path / "data" / "llm").rglob("*.json"))) == 2
    for entry in (tmp_path / "data" / "llm").rglob("*.json"):
        reply = json.loads(entry.read_text())["reply"]
        json.loads(reply)  # llama.cpp enforced the JSON schema
    # every row is either an accepted correction or routed to review by the guard: never silently rewritten
    assert set(live["status"]) <= {"accepted", "needs_review"}
    offline = params.model_copy(update={"base_url": "http://127.0.0.1:9/v1", "max_retries": 0})
    replay = correct_blocks(blocks, wave_id="W900", backend=make_backend("openai", offline), params=offline,
                            hints=hints, progress=False)
    assert list(replay["question"]) == list(live["question"])
    assert list(replay["cache_key"]) == list(live["cache_key"])
    assert all("replayed from cache" in n for n in replay["notes"])


def test_committed_cache_replays_the_sample_without_an_endpoint(sample_sav, tmp_path, monkeypatch):
    """`dvc repro` with backend openai must work offline: every sample request is in data/cache/llm."""
    monkeypatch.chdir(REPO)
    from opinionbench.questionnaire.ocr import ocr_pdf
    from opinionbench.questionnaire.pipeline import wave_hints
    from opinionbench.questionnaire.segment import segment
    from opinionbench.survey import load_wave

    blocks = segment(ocr_pdf(SAMPLE_PDF, cache_dir=tmp_path / "data" / "ocr", progress=False))
    offline = CorrectionParams(backend="openai", base_url="http://127.0.0.1:9/v1", model="smollm2",
                               response_format="json_object", max_retries=0, cache_dir=REPO / "data" / "cache" / "llm")
    frame = correct_blocks(blocks, wave_id="W900", backend=make_backend("openai", offline), params=offline,
                           hints=wave_hints(load_wave(sample_sav)), progress=False)
    assert len(frame) == 12
    assert all("replayed from cache" in n for n in frame["notes"]), "tesseract output differs from the cached run"
    # SmolLM2-135M rewrites some questions: the guard must have sent those to review
    assert (frame["status"] == "needs_review").any() and (frame["status"] == "accepted").any()
