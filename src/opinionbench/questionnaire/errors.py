"""Questionnaire-specific errors; each message names the file (and page or item) at fault."""

from __future__ import annotations

from opinionbench.errors import OpinionBenchError


class QuestionnaireError(OpinionBenchError):
    """A questionnaire PDF cannot be read (not a PDF, encrypted, truncated, no usable pages)."""


class CorrectionError(OpinionBenchError):
    """A correction backend failed for one question (endpoint down, timeout, reply not the schema)."""


class print_warnings:
    """Context manager: every warning raised inside is printed as one `warning: ...` line."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings(record=True)
        self.caught = self._ctx.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        import sys

        self._ctx.__exit__(*exc)
        for w in self.caught:
            print(f"warning: {w.message}", file=sys.stderr)
        return False
