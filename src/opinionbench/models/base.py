"""The model backend interface: the two operations every harness of the field settles on.

`next_token_logprobs` (log-probabilities of candidate next tokens after a chat prompt) serves
the `logprobs` method; `generate` (sampled or greedy replies) serves `verbalized` and
`sequence`. A backend answers a whole batch at once so that it can sort, bucket and share work;
one bad prompt comes back as a `Failure` in its slot instead of stopping the batch.

A backend owns its settings (a `BackendSettings` subclass named by its `Settings`): a
`models:` entry of params.yaml is validated by the class of the backend it names, so adding
a backend or a knob never touches config.py.
"""

from __future__ import annotations

import hashlib
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

A = TypeVar("A")
R = TypeVar("R")

from pydantic import BaseModel, ConfigDict, Field

from opinionbench.errors import OpinionBenchError


class ModelError(OpinionBenchError):
    """A model cannot be loaded or reached (bad path, unknown backend, endpoint down)."""


@dataclass(frozen=True)
class Prompt:
    """A chat conversation; the model's reply starts right after the last message."""

    messages: tuple[tuple[str, str], ...]  # (role, content)

    def as_openai(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.messages).encode()).hexdigest()


@dataclass(frozen=True)
class NextToken:
    """Log-probabilities of next tokens, keyed by the token's text.

    `exhaustive` is True when every requested candidate was scored exactly (in-process
    backends); False when only the top-k were returned (API backends), so a candidate that is
    absent had a probability below the least listed one.
    """

    logprobs: dict[str, float]
    exhaustive: bool


@dataclass(frozen=True)
class Failure:
    """Why one prompt got no answer; recorded in the predictions (failed=True, error=...)."""

    error: str


@dataclass(frozen=True)
class GenerationRequest:
    """`n` replies to one prompt; temperature 0 = greedy. `seed` makes sampling repeatable."""

    prompt: Prompt
    max_tokens: int
    temperature: float = 0.0
    n: int = 1
    seed: int = 0
    json_schema: dict | None = field(default=None, hash=False, compare=False)


class BackendSettings(BaseModel):
    """What every `models:` entry has. Unknown keys are errors: a misspelt knob must not be ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = Field(description="the registered backend that runs this model")
    model: str = Field(description="what the backend loads or asks for (hub id, path, served model name)")
    revision: str | None = None


_TOKEN_METER: ContextVar[list[int] | None] = ContextVar("opinionbench_token_meter", default=None)
_COUNT_LOCK = threading.Lock()


@contextmanager
def metered() -> Iterator[list[int]]:
    """Tokens counted (`Backend.count_tokens`) inside the block, in this context and the worker
    threads a backend starts from it with `in_context`: chunks computed concurrently each get
    their own count."""
    box = [0]
    token = _TOKEN_METER.set(box)
    try:
        yield box
    finally:
        _TOKEN_METER.reset(token)


def in_context(fn: Callable[[A], R]) -> Callable[[A], R]:
    """`fn` run in the caller's context (its token meter) when a pool thread calls it."""
    context = copy_context()
    return lambda arg: context.copy().run(fn, arg)


class Backend(ABC):
    """One model; the implementations are registered in `opinionbench.models.backends`."""

    Settings: ClassVar[type[BackendSettings]] = BackendSettings
    model_id: str
    revision: str
    # Tokens the model processed so far (prompt + generated, as the backend counts them: hf its
    # forward tokens, openai the endpoint's reported usage); the runner meters each chunk's own.
    tokens_processed: int = 0
    # Requests worth having in flight at once: the runner computes that many cells' chunks
    # concurrently (1: one chunk after another, as a local model wants).
    parallel_requests: int = 1

    # Attributes besides `model_id` and `revision` that change this backend's answers (the
    # endpoint, request fields): part of every request key (`request_key`).
    request_fields: ClassVar[tuple[str, ...]] = ()

    def request_key(self) -> dict[str, object]:
        """What, besides `model_id`, `revision`, the prompts and the method's settings, determines
        an answer: `request_fields` by name (an override may add e.g. a device that changes numbers).

        Why: the runner keys every computed cell on this too, so a cell is reused only when the
        same request would reach the same model the same way; another endpoint or request field
        is another cell, never a replayed one. Empty (the default) leaves request hashes as they
        were before this key existed, so caches of backends without such fields stay valid.
        """
        return {name: getattr(self, name) for name in self.request_fields}

    def count_tokens(self, n: int) -> None:
        """Add `n` processed tokens to the total and to the meter of the chunk being computed."""
        with _COUNT_LOCK:
            self.tokens_processed += n
            box = _TOKEN_METER.get()
            if box is not None:
                box[0] += n

    @classmethod
    def from_settings(cls, settings: BackendSettings) -> Backend:
        """The backend of a validated entry: its fields other than `backend`/`model` are keyword arguments."""
        return cls(settings.model, **settings.model_dump(exclude={"backend", "model"}))

    @abstractmethod
    def next_token_logprobs(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[NextToken | Failure]:
        """For each prompt, the log-probabilities of the candidate tokens (e.g. "A", " A")."""

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str] | Failure]:
        """For each request, its `n` reply texts (or a Failure)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, servers); the default has none."""
