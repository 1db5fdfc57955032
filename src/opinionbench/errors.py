"""One exception type per kind of bad input, so every stage can turn them into one clear line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OpinionBenchError(Exception):
    """Base class: its message is already the one line a user should read (file/item + problem)."""


class ConfigError(OpinionBenchError):
    """params.yaml (or a file it points to) is invalid; the message names the key."""


class SurveyError(OpinionBenchError):
    """A .sav wave cannot be used as it is (unreadable, no weight, unknown demographic code...)."""


def one_line(exc: BaseException) -> str:
    """Collapse an exception into the single line the CLI prints, never a traceback."""
    text = str(exc).strip().replace("\n", " | ")
    return text if isinstance(exc, OpinionBenchError) else f"{type(exc).__name__}: {text}"


def did_you_mean(name: str, known: Iterable[str], prefix: str = "") -> str:
    """` (did you mean infer.k_shots?)` for the known name closest to a misspelt one (shown after
    `prefix`); '' when none is close."""
    close = difflib.get_close_matches(name, [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""
