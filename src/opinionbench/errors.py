"""One exception type per kind of bad input, so every stage can turn them into one clear line."""

from __future__ import annotations


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
