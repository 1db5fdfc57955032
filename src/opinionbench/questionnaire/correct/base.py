"""The types of the correction seam: what a backend gets (a block and a hint) and gives back.

A backend gets one OCR'd question block and, when the microdata is at hand, the codebook entry
of that code as a hint; it returns the corrected wording and options plus what it used (model,
cache key). Everything around it (hint lookup, drift guard, topline check, review) is the same
for every backend, so a backend is only this interface. The registry of backends is here too
(names only: a backend module is imported when its name is asked for), so the settings
(`settings.py`) can check a name without importing any backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

from opinionbench.registry import Registry

if TYPE_CHECKING:
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


corrections: Registry[Callable[..., CorrectionBackend]] = Registry("correction backend", {
    "codebook": "opinionbench.questionnaire.correct.codebook",
    "openai": "opinionbench.questionnaire.correct.openai_compat",
    "none": "opinionbench.questionnaire.correct.none",
})
