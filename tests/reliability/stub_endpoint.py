"""A tiny OpenAI-compatible endpoint on 127.0.0.1 that misbehaves on a script, then recovers.

Why a stub and not the llama.cpp server: faults (a reply that never comes, 429 with Retry-After,
500) must happen on a chosen request, and the number of requests must be bounded and counted.
Replies are deterministic functions of the request body, so reruns can be compared exactly.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def completion(content: str, top: dict[str, float] | None = None) -> dict:
    choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
    if top is not None:
        first = max(top, key=top.get)
        choice["logprobs"] = {"content": [{
            "token": first, "logprob": top[first], "bytes": None,
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()],
        }]}
    return {"id": "stub", "object": "chat.completion", "created": 0, "model": "stub", "choices": [choice],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def deterministic_reply(body: dict) -> dict:
    digest = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).digest()
    top = {LETTERS[i]: -0.1 - digest[i] / 64.0 for i in range(6)}
    return completion(json.dumps({k: round(1 / 6, 4) for k in LETTERS[:6]}), top)


class StubEndpoint:
    """`script`: behaviours for the first requests ("timeout", "429", "500", "ok"); then "ok".

    After `max_requests` every request gets 503, so a runaway retry loop shows up as failures
    instead of hanging the suite.
    """

    def __init__(self, script=(), reply=deterministic_reply, delay: float = 0.0, max_requests: int = 200,
                 hang_s: float = 3.0) -> None:
        self.script = list(script)
        self.reply = reply
        self.delay = delay
        self.max_requests = max_requests
        self.hang_s = hang_s
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with stub.lock:
                    stub.requests.append(body)
                    stub.headers.append(dict(self.headers))
                    n = len(stub.requests)
                    action = stub.script[n - 1] if n <= len(stub.script) else "ok"
                if n > stub.max_requests:
                    return self._send(503, {"error": {"message": "request budget exhausted"}})
                if action == "timeout":
                    time.sleep(stub.hang_s)
                    return self._send(200, stub.reply(body))
                if action == "429":
                    return self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": "1"})
                if action == "500":
                    return self._send(500, {"error": {"message": "internal error"}})
                if stub.delay:
                    time.sleep(stub.delay)
                return self._send(200, stub.reply(body))

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): expected in fault tests

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "StubEndpoint":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
