"""Topline reconciliation: the printed percentages against the weighted Overall distribution.

A topline prints whole percentages of all respondents, so each printed value may differ from
100 × share × (1 − refusal rate) by at most half a point (rounding); more than that means OCR
misread a digit, or the questionnaire and the microdata disagree, and the question is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

ROUNDING = 0.5 + 1e-6


@dataclass(frozen=True)
class ToplineCheck:
    ok: bool | None  # None: nothing to compare (no distribution, unreadable or misaligned values)
    max_diff: float | None
    detail: str


def expected_percents(probs: list[float], refusal_rate: float) -> list[float]:
    return [100.0 * float(p) * (1.0 - float(refusal_rate)) for p in probs]


def reconcile(printed: list[str | None], probs: list[float] | None, refusal_rate: float | None) -> ToplineCheck:
    if probs is None or refusal_rate is None:
        return ToplineCheck(None, None, "no weighted distribution for this question")
    if len(printed) != len(probs):
        return ToplineCheck(False, None, f"{len(printed)} printed values for {len(probs)} options")
    expected = expected_percents(list(probs), refusal_rate)
    diffs = []
    for value, exp in zip(printed, expected):
        if value is None:
            return ToplineCheck(False, None, "a printed percentage is unreadable")
        if value == "<1":
            diffs.append(0.0 if exp < 0.5 + 1e-6 else exp - 0.5)
        else:
            diffs.append(abs(float(value) - exp))
    worst = max(diffs) if diffs else 0.0
    ok = worst <= ROUNDING
    return ToplineCheck(ok, round(worst, 3), "within rounding" if ok else f"off by {worst:.1f} points")
