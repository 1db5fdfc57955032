"""Shared fixtures: the sample wave, the real data (skipped when absent), a real local server,
fake OpenAI-compatible endpoints (fake_openai.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
ATP_DIR = SHARED / "data" / "atp"
SAMPLE_SAV = REPO / "data" / "sample" / "W900.sav"

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def sample_sav() -> Path:
    return SAMPLE_SAV


@pytest.fixture(scope="session")
def atp_dir() -> Path:
    """The real Pew waves at ../shared/data/atp; tests using it skip with the reason when absent."""
    if not ATP_DIR.is_dir():
        pytest.skip(f"real ATP data not available at {ATP_DIR} (../shared is absent)")
    return ATP_DIR


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared not available at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A real OpenAI-compatible server (llama.cpp) on 127.0.0.1 serving the embedded SmolLM2 GGUF.

    Yields the base URL (`http://127.0.0.1:PORT/v1`). It returns logprobs/top_logprobs and
    enforces JSON-schema `response_format`, so the openai backends are tested end to end.
    """
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] not installed (make setup)")
    from opinionbench.models.llama_server import serve_embedded

    with serve_embedded(tmp_path_factory.mktemp("llama") / "server.log", threads=2, n_ctx=2048) as url:
        yield url


@pytest.fixture
def fake_openai():
    """Starts fake OpenAI-compatible endpoints on 127.0.0.1: `fake_openai(script=..., reply=...,
    delay=...)` returns a started `FakeOpenAI` (its arguments in fake_openai.py); every endpoint
    started is closed after the test."""
    from fake_openai import FakeOpenAI

    started: list[FakeOpenAI] = []

    def start(*args, **kwargs) -> FakeOpenAI:
        endpoint = FakeOpenAI(*args, **kwargs).start()
        started.append(endpoint)
        return endpoint

    yield start
    for endpoint in started:
        endpoint.close()
