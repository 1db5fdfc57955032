"""An instant OpenAI-compatible endpoint: every chat completion answered at once with one precomputed reply.

Why: against a real server the client's cost hides behind the model's; against this one (no
model, no per-request work beyond reading the request) what is measured is the client's own
CPU per request. It runs in its own process (`serve_instant`), so its CPU is not counted as
the client's, and on asyncio with keep-alive, so its cost per request stays far below the
client's: 0.09 ms of its own CPU per request against the `openai` client's 1.1-1.2 ms, measured on
the 2-core development machine (tests/fake_openai.py, a thread per connection, is built for
scripted faults, not for speed).

Replies: `POST .../chat/completions` gets a one-token completion whose first token lists
`TOP` top log-probs (the option letters and their space-prefixed variants, as llama.cpp
lists them) and a usage block; `GET .../models` a one-model list. Only `Content-Length`
bodies are read (what httpx sends).

Run as a script it prints its port on the first line of stdout and serves until killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator

TOP = 20
MODEL = "instant"


def reply_body() -> bytes:
    """The one chat completion every request gets: top-`TOP` log-probs over A..J and " A".." J"."""
    letters = "ABCDEFGHIJ"
    tokens = [t for letter in letters for t in (letter, f" {letter}")][:TOP]
    top = [{"token": t, "logprob": -0.25 - 0.37 * k, "bytes": list(t.encode())} for k, t in enumerate(tokens)]
    choice = {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": tokens[0]},
              "logprobs": {"content": [{"token": tokens[0], "logprob": top[0]["logprob"],
                                        "bytes": top[0]["bytes"], "top_logprobs": top}]}}
    return json.dumps({"id": "chatcmpl-instant", "object": "chat.completion", "created": 0, "model": MODEL,
                       "choices": [choice], "usage": {"prompt_tokens": 150, "completion_tokens": 1,
                                                      "total_tokens": 151}}).encode()


def _response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: keep-alive\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


COMPLETION = _response(reply_body())
MODELS = _response(json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode())


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests parsed from the byte stream, each answered at once."""

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still coming
            self.buffer = self.buffer[end + 4 + length:]
            self.transport.write(MODELS if head.startswith("GET") else COMPLETION)


async def _serve(sock: socket.socket) -> None:
    server = await asyncio.get_running_loop().create_server(_Connection, sock=sock)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def serve_instant() -> Iterator[str]:
    """This endpoint in its own process on a free port of 127.0.0.1; yields its `/v1` URL, stops it on exit."""
    proc = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.strip().isdigit():
            raise RuntimeError(f"instant endpoint did not start (exit {proc.poll()}, said {line!r})")
        yield f"http://127.0.0.1:{int(line)}/v1"
    finally:  # it holds no state worth a graceful stop
        proc.kill()
        proc.wait()


def main() -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sock))


if __name__ == "__main__":
    main()
