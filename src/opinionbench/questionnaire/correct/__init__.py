"""Correction backends behind one interface (base.py), chosen by name in params.yaml.

`questionnaire.correction.backend` is checked against `corrections.names()`, so adding a
backend is one module with a `@corrections.register("name")` class taking the
`CorrectionParams`, plus one line naming that module in `builtins` below (which lets the
config know every name without importing the backends, e.g. the openai client).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from opinionbench.errors import ConfigError
from opinionbench.questionnaire.correct.base import Correction, CorrectionBackend, Hint
from opinionbench.registry import Registry

if TYPE_CHECKING:
    from opinionbench.config import CorrectionParams

corrections: Registry[Callable[..., CorrectionBackend]] = Registry("correction backend", {
    "codebook": "opinionbench.questionnaire.correct.codebook",
    "openai": "opinionbench.questionnaire.correct.openai_compat",
    "none": "opinionbench.questionnaire.correct.none",
})


def make_backend(name: str, params: CorrectionParams | None = None) -> CorrectionBackend:
    """The backend registered as `name`, built with its params (`questionnaire.correction`)."""
    try:
        factory = corrections.get(name)
    except ConfigError as exc:
        raise ConfigError(f"questionnaire.correction.backend: {exc}") from None
    return factory(params)


__all__ = ["Correction", "CorrectionBackend", "Hint", "corrections", "make_backend"]
