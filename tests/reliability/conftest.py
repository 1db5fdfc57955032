"""The reliability suite's tally: how many bad inputs and faults were tried, and that nothing was lost.

Each test reports what it tried through the `tally` fixture; a session-finish hook prints the
totals, so a CI log says e.g. "reliability: 14 bad inputs, 6 faults tried; nothing lost (6/6)".
"""

from __future__ import annotations

from collections import Counter

import pytest

_TALLY: Counter[str] = Counter()
_LOST: list[str] = []


class Tally:
    def bad_input(self, what: str) -> None:
        _TALLY["bad inputs"] += 1

    def fault(self, what: str) -> None:
        _TALLY["faults"] += 1

    def survived(self, what: str, nothing_lost: bool) -> None:
        """A fault was survived; `nothing_lost` is the comparison with an uninterrupted run."""
        _TALLY["faults survived"] += 1
        if not nothing_lost:
            _LOST.append(what)

    def security(self, what: str) -> None:
        _TALLY["security checks"] += 1


@pytest.fixture
def tally() -> Tally:
    return Tally()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _TALLY:
        return
    lost = f"LOST WORK in {', '.join(_LOST)}" if _LOST else "nothing lost"
    terminalreporter.write_line(
        f"reliability: {_TALLY['bad inputs']} bad inputs, {_TALLY['faults']} faults, "
        f"{_TALLY['security checks']} security checks tried; {_TALLY['faults survived']} fault reruns, {lost}"
    )
