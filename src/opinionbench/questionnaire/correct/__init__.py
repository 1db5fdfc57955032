"""Correction backends behind one interface (base.py), chosen by name in params.yaml.

`questionnaire.correction.backend` is checked against `corrections.names()`, so adding a
backend is one module with a `@corrections.register("name")` class taking the
`CorrectionParams` (settings.py), plus one line naming that module in the registry's
`builtins` (base.py: it lets the settings know every name without importing the backends,
e.g. the openai client).
"""

from __future__ import annotations

from opinionbench.errors import ConfigError
from opinionbench.questionnaire.correct.base import Correction, CorrectionBackend, Hint, corrections
from opinionbench.questionnaire.correct.settings import CorrectionParams


def make_backend(name: str, params: CorrectionParams | None = None) -> CorrectionBackend:
    """The backend registered as `name`, built with its params (`questionnaire.correction`)."""
    try:
        factory = corrections.get(name)
    except ConfigError as exc:
        raise ConfigError(f"questionnaire.correction.backend: {exc}") from None
    return factory(params)


__all__ = ["Correction", "CorrectionBackend", "CorrectionParams", "Hint", "corrections", "make_backend"]
