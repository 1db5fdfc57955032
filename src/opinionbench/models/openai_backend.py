"""`openai` backend: any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp, `transformers serve`).

This is the scale-out path: point `base_url` at a vLLM server or cluster and raise
`concurrency`. Requests run in a bounded thread pool; the client (models/openai_client.py, shared
with questionnaire correction) retries transient errors (429/5xx, timeouts) with backoff; a
prompt whose request still fails, or whose reply is not what was asked for, comes back as a
`Failure` naming the endpoint and the reason, so the others go on and nothing already computed
is lost. The API key is read from the environment variable named in params (never from params
itself) and never logged or recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar, get_args

from pydantic import Field

from opinionbench.models import backends
from opinionbench.models.base import (Backend, BackendSettings, Failure, GenerationRequest, ModelError, NextToken, Prompt,
                                      in_context)
from opinionbench.models.openai_client import api_key, make_client

A = TypeVar("A")
R = TypeVar("R")

# How a JSON schema is asked for: OpenAI / vLLM / `transformers serve` take `json_schema`;
# llama.cpp's Python server takes `json_object` with a `schema`; "none" sends no constraint.
ResponseFormat = Literal["json_schema", "json_object", "none"]
RESPONSE_FORMATS: tuple[str, ...] = get_args(ResponseFormat)


class OpenAISettings(BackendSettings):
    """A `models:` entry with `backend: openai`; the backend's own knobs live here, beside the code that reads them."""

    model: str = Field(description="the model name the endpoint serves")
    base_url: str = Field(description="the OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")
    api_key_env: str | None = Field(None, description="environment variable holding the API key (never the key)")
    concurrency: int = Field(4, ge=1, le=256)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    top_logprobs: int = Field(20, ge=1, le=20)
    response_format: ResponseFormat = Field(
        "json_schema", description="how the verbalized JSON schema is sent: json_schema (OpenAI, vLLM), "
                                   "json_object (llama.cpp server), none")
    strict: bool = Field(True, description="json_schema sent with strict: true (OpenAI structured outputs)")
    samples_via_n: bool = Field(False, description="sequence samples in one request with `n` (vLLM, OpenAI); "
                                "false: one seeded request per sample, for servers without `n` (llama.cpp)")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="engine-specific request fields merged into every request body, "
        "e.g. vLLM's {structured_outputs: ...} or llama.cpp's {grammar: ...}; part of the request hash")


def _os_reason(exc: BaseException) -> str:
    """` (connection refused)`: the operating system's reason found under a connection error, if any.

    Why: the client's own message is only "Connection error."; the stage's error line must say
    what actually happened (refused, unreachable, name not resolved)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            return f" ({os.strerror(current.errno).lower()})"
        text = str(current).lower()
        for known in ("connection refused", "name or service not known", "network is unreachable",
                      "no route to host", "connection reset"):
            if known in text:
                return f" ({known})"
        current = current.__cause__ or current.__context__
    return ""


def _float(value: Any) -> Any:
    """A JSON integer log-prob as the float it stands for (as the client's typed reply had it)."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _message_content(choice: Any) -> Any:
    """`choice.message.content` of a reply's JSON, None where any of it is missing."""
    message = choice.get("message") if isinstance(choice, dict) else None
    return message.get("content") if isinstance(message, dict) else None


@backends.register("openai")
class OpenAIBackend(Backend):
    Settings = OpenAISettings
    # What, besides the prompt and the method's settings, goes into a request and so decides its
    # reply: the endpoint, and every request field that is not a method setting. Not concurrency,
    # timeouts or retries (how a request is sent, not what it asks).
    request_fields = ("base_url", "top_logprobs", "response_format", "strict", "samples_via_n", "extra_body")

    def __init__(self, model: str, *, base_url: str, api_key_env: str | None = None, revision: str | None = None,
                 concurrency: int = 4, timeout_s: float = 60.0, max_retries: int = 2, top_logprobs: int = 20,
                 response_format: str = "json_schema", strict: bool = True,
                 extra_body: dict[str, Any] | None = None, samples_via_n: bool = False) -> None:
        key = api_key(api_key_env, required=True, where=model)
        self.client = make_client(base_url, key=key, timeout=timeout_s, max_retries=max_retries)
        self.base_url = base_url.rstrip("/")
        self.model_id = model
        self.revision = revision or "endpoint"
        self.top_logprobs = top_logprobs
        if response_format not in RESPONSE_FORMATS:
            raise ModelError(f"{model}: response_format {response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}")
        self.response_format = response_format
        self.strict = strict
        self.samples_via_n = samples_via_n
        if samples_via_n:  # other sampling streams than one seeded request per sample: other cells
            self.revision = f"{self.revision}+n"
        self.extra_body = dict(extra_body or {})
        if self.extra_body:  # engine fields can change replies: they are part of what the cache keys on
            digest = hashlib.sha256(json.dumps(self.extra_body, sort_keys=True).encode()).hexdigest()[:12]
            self.revision = f"{self.revision}+extra_body:{digest}"
        self.pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        self.tokens_processed = 0
        self.parallel_requests = max(1, concurrency)  # the runner keeps this many cells' requests in flight

    def _count(self, reply: dict) -> None:
        """Add the endpoint's reported usage (prompt + completion tokens) to the token count."""
        usage = reply.get("usage")
        if isinstance(usage, dict):
            self.count_tokens(int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0))

    def _completion(self, **fields: Any) -> dict:
        """One chat completion, as the endpoint's JSON object (usage counted).

        Why the raw JSON (`with_raw_response`): the client's typed reply (objects built for every
        reply, one per top log-prob) cost about a third of its CPU per request, measured against
        an instant endpoint (benchmarks/serving.py --endpoint instant), and this backend reads
        three fields of it. Sending, retries and HTTP errors stay the client's own.
        """
        raw = self.client.chat.completions.with_raw_response.create(model=self.model_id, **fields)
        reply = raw.http_response.json()
        if not isinstance(reply, dict):
            raise ValueError(f"the reply is a JSON {type(reply).__name__}, not an object")
        self._count(reply)
        return reply

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _describe(self, exc: Exception) -> str:
        import openai

        if isinstance(exc, openai.APIStatusError):
            return f"{self.base_url}: HTTP {exc.status_code} from the endpoint"
        if isinstance(exc, openai.APITimeoutError):
            return f"{self.base_url}: request timed out"
        if isinstance(exc, openai.APIConnectionError):
            return f"{self.base_url}: cannot connect{_os_reason(exc)}"
        text = str(exc).splitlines()[0] if str(exc) else ""
        return f"{self.base_url}: unusable reply ({type(exc).__name__}: {text[:160]})"

    def _extra(self) -> dict[str, Any]:
        """`extra_body` for the client (merged into the JSON body), only when the entry sets one."""
        return {"extra_body": dict(self.extra_body)} if self.extra_body else {}

    def _guard(self, call: Callable[[A], R]) -> Callable[[A], R | Failure]:
        def wrapped(arg: A) -> R | Failure:
            try:
                return call(arg)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded Failure
                return Failure(self._describe(exc))
        return wrapped

    def next_token_logprobs(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[NextToken | Failure]:
        def one(prompt: Prompt) -> NextToken:
            reply = self._completion(messages=prompt.as_openai(), max_tokens=1, temperature=0.0, logprobs=True,
                                     top_logprobs=self.top_logprobs, **self._extra())
            choices = reply.get("choices")
            logprobs = choices[0].get("logprobs") if choices else None
            content = logprobs.get("content") if logprobs else None
            if not content:
                raise ValueError("the endpoint returned no logprobs (does it support `logprobs`/`top_logprobs`?)")
            top: dict[str, float] = {}
            for entry in content[0].get("top_logprobs") or ():
                logprob = _float(entry["logprob"])
                top[entry["token"]] = max(logprob, top.get(entry["token"], float("-inf")))
            if not top:
                top[content[0]["token"]] = _float(content[0]["logprob"])
            return NextToken(top, exhaustive=False)

        return list(self.pool.map(in_context(self._guard(one)), prompts))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str] | Failure]:
        def one(request: GenerationRequest) -> list[str]:
            extra = self._extra()
            if request.json_schema is not None and self.response_format == "json_schema":
                extra["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "distribution", "schema": request.json_schema, "strict": self.strict}}
            elif request.json_schema is not None and self.response_format == "json_object":
                extra["response_format"] = {"type": "json_object", "schema": request.json_schema}
            texts: list[str] = []
            if self.samples_via_n and request.n > 1:  # one request; a server that ignores `n` is topped up below
                reply = self._completion(messages=request.prompt.as_openai(), max_tokens=request.max_tokens,
                                         temperature=request.temperature, seed=request.seed, n=request.n, **extra)
                texts = [t for t in map(_message_content, reply.get("choices") or ()) if t is not None][: request.n]
            for i in range(len(texts), request.n):  # one seeded call per (remaining) sample
                reply = self._completion(messages=request.prompt.as_openai(), max_tokens=request.max_tokens,
                                         temperature=request.temperature, seed=request.seed + i, **extra)
                text = _message_content(reply["choices"][0]) if reply.get("choices") else None
                if text is None:
                    raise ValueError("the endpoint returned no message content")
                texts.append(text)
            return texts

        return list(self.pool.map(in_context(self._guard(one)), requests))
