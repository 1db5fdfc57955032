"""Shared fixtures: the sample wave, the real data (skipped when absent), a real local server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"server at {url} did not answer within {timeout}s")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A real OpenAI-compatible server (llama.cpp) on 127.0.0.1 serving the embedded SmolLM2 GGUF.

    Yields the base URL (`http://127.0.0.1:PORT/v1`). It returns logprobs/top_logprobs and
    enforces JSON-schema `response_format`, so the openai backends are tested end to end.
    """
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] not installed (make setup)")
    from opinionbench.embedded import smollm2_gguf

    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--model_alias", "smollm2",
        "--logits_all", "true",
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/v1/models", proc, timeout=120)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
