"""The embedded SmolLM2 behind llama.cpp's OpenAI-compatible server, on 127.0.0.1.

The `openai` backend is tested and benchmarked against a real server, not a fake: the tests'
fixture and `benchmarks/serving.py` start it the same way from here (free port, readiness
probe, always stopped).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

ALIAS = "smollm2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    """Until `url` answers 200; a server that exits first or stays silent is a one-line error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"llama.cpp server at {url} not ready within {timeout:.0f}s")


@contextlib.contextmanager
def serve_embedded(log: Path, *, threads: int = 2, n_ctx: int = 2048, extra: Sequence[str] = (),
                   timeout: float = 120.0) -> Iterator[str]:
    """llama-cpp-python's server with the embedded GGUF (`--logits_all`, so chat completions carry
    logprobs); yields its `/v1` URL and stops the server on exit."""
    from opinionbench.embedded import smollm2_gguf

    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--model_alias", ALIAS,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
           "--logits_all", "true", *extra]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/v1/models", proc, timeout=timeout)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
