"""The correction seam: one interface, interchangeable backends chosen by name in params.yaml.

A backend gets one OCR'd question block and, when the microdata is at hand, the codebook entry
of that code as a hint; it returns the corrected wording and options plus what it used (model,
cache key). Everything around it (hint lookup, drift guard, topline check, review) is the same
for every backend, so adding one is a module with a `@register("name")` class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from opinionbench.errors import ConfigError
from opinionbench.questionnaire.segment import Block


@dataclass(frozen=True)
class Hint:
    """The codebook's version of a question: the truth a correction may lean on, never copy blindly."""

    qcode: str
    question: str
    options: list[str]
    refusal_options: list[str] = field(default_factory=list)


@dataclass
class Correction:
    question: str
    options: list[str]
    backend: str
    model: str | None = None
    cache_key: str | None = None
    notes: list[str] = field(default_factory=list)


class CorrectionBackend(Protocol):
    name: str

    def correct(self, block: Block, hint: Hint | None) -> Correction: ...


BACKENDS: dict[str, Callable[..., CorrectionBackend]] = {}


def register(name: str):
    """Class decorator: make a backend selectable as `questionnaire.correction.backend: <name>`."""

    def wrap(cls):
        cls.name = name
        BACKENDS[name] = cls
        return cls

    return wrap


def make_backend(name: str, params=None) -> CorrectionBackend:
    from opinionbench.questionnaire.correct import codebook, none, openai_compat  # noqa: F401  (registration)

    if name not in BACKENDS:
        raise ConfigError(f"questionnaire.correction.backend: unknown backend {name!r} (known: {', '.join(sorted(BACKENDS))})")
    return BACKENDS[name](params)
