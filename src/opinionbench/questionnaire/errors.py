"""Questionnaire-specific errors; each message names the file (and page or item) at fault."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator

from opinionbench.errors import OpinionBenchError


class QuestionnaireError(OpinionBenchError):
    """A questionnaire PDF cannot be read (not a PDF, encrypted, truncated, no usable pages)."""


class CorrectionError(OpinionBenchError):
    """A correction backend failed for one question (endpoint down, timeout, reply not the schema)."""


@contextlib.contextmanager
def printed_warnings() -> Iterator[None]:
    """Every warning raised inside (a blank page, a missing file) is printed as one `warning: ...` line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                print(f"warning: {w.message}", file=sys.stderr)
