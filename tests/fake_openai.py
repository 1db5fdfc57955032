"""The one fake OpenAI-compatible endpoint of the tests: real HTTP on 127.0.0.1, no model.

Why a fake beside the real llama.cpp server (conftest's `llama_server`): faults (a reply that
never comes, 429 with Retry-After, 500, a body that is not JSON) must happen on a chosen
request, requests must be counted and bounded, and replies must be deterministic functions of
the request so that reruns compare exactly. Tests get it from conftest's `fake_openai` fixture,
which closes every endpoint it started.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Reply:
    """An answer sent as it is: status, raw body, extra headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def completion(content: str, top: dict[str, float] | None = None, *, n: int = 1,
               usage: tuple[int, int] = (1, 1)) -> dict:
    """A chat completion of `n` identical choices; `top`: the first token's top log-probs."""
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
    if top is not None:
        first = max(top, key=top.get)
        choice["logprobs"] = {"content": [{
            "token": first, "logprob": top[first], "bytes": None,
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()],
        }]}
    return {"id": "fake", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [dict(choice, index=i) for i in range(n)],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}


def deterministic_reply(body: dict) -> dict:
    """Log-probs of six letters and a uniform JSON distribution, both a function of the messages."""
    digest = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).digest()
    top = {LETTERS[i]: -0.1 - digest[i] / 64.0 for i in range(6)}
    return completion(json.dumps({k: round(1 / 6, 4) for k in LETTERS[:6]}), top)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps({"error": {"message": message}}).encode(), headers or {})


class FakeOpenAI:
    """`POST .../chat/completions` answered by `reply(body)` (a JSON dict sent with 200, or a
    `Reply`), `GET .../models` by a one-model list.

    `script`: what the first requests get instead, one entry each, taken in order (it may be
    set or extended between requests):
      "ok"                  the reply;        ("ok", content)   a completion with that content
      "timeout"             the reply after `hang_s` seconds;  ("sleep", s)  after s seconds
      "429"                 429 with Retry-After 1;  ("429", seconds)  with that Retry-After
      "500"                 HTTP 500;         ("status", code)  that status
      a `Reply`             exactly that
    `delay`: seconds every answer waits. After `max_requests` every request gets 503, so a
    runaway retry loop shows up as failures instead of hanging the suite.
    Recorded: `requests` (the bodies), `headers` (lower-cased names), `most` (most in flight at once).
    """

    def __init__(self, script=(), reply: Callable[[dict], dict | Reply] = deterministic_reply, *,
                 delay: float = 0.0, max_requests: int = 200, hang_s: float = 3.0) -> None:
        self.script = list(script)
        self.reply, self.delay, self.max_requests, self.hang_s = reply, delay, max_requests, hang_s
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.active = self.most = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                self._send(Reply(200, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode()))

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with fake.lock:
                    fake.requests.append(body)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    n = len(fake.requests)
                    action = fake.script.pop(0) if fake.script else "ok"
                    fake.active += 1
                    fake.most = max(fake.most, fake.active)
                try:
                    self._send(_error(503, "request budget exhausted") if n > fake.max_requests else fake._answer(action, body))
                finally:
                    with fake.lock:
                        fake.active -= 1

            def _send(self, reply: Reply):
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(reply.body)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout): expected in fault tests

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, action, body: dict) -> Reply:
        if isinstance(action, Reply):
            return action
        kind, arg = action if isinstance(action, tuple) else (action, None)
        if kind == "429":
            return _error(429, "rate limited", {"Retry-After": str(1 if arg is None else arg)})
        if kind == "500" or kind == "status":
            return _error(500 if arg is None else arg, "scripted failure")
        wait = {"timeout": self.hang_s, "sleep": arg}.get(kind, 0.0) or self.delay
        if wait:
            time.sleep(wait)
        if kind == "ok" and arg is not None:
            return self._reply(completion(arg))
        return self._reply(self.reply(body))

    @staticmethod
    def _reply(answer: dict | Reply) -> Reply:
        return answer if isinstance(answer, Reply) else Reply(200, json.dumps(answer).encode())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def close(self) -> None:
        """Stop answering: a request after this fails to connect."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
