"""The drift guard: a correction may fix what OCR got wrong, not rewrite the question.

OCR on a decent scan errs on a few percent of characters, so a correction that changes far
more than that (or moves away from the codebook's wording) is more likely a hallucination or
an obeyed prompt injection than a fix; it goes to review instead of the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz.distance import Indel, Levenshtein


def as_text(question: str, options: list[str]) -> str:
    return " | ".join([question, *options])


def drift(before: str, after: str) -> float:
    """Normalised character edit distance (0 = identical, 1 = nothing in common)."""
    return float(Levenshtein.normalized_distance(before, after))


def similarity(a: str, b: str) -> float:
    return float(Indel.normalized_similarity(a.lower(), b.lower()))


@dataclass(frozen=True)
class DriftVerdict:
    drift: float
    hint_similarity: float | None
    reasons: list[str]

    @property
    def accepted(self) -> bool:
        return not self.reasons


MOVE_AWAY_TOLERANCE = 0.01


def check_drift(ocr_question: str, ocr_options: list[str], question: str, options: list[str],
                hint_question: str | None, *, threshold: float, hint_min_similarity: float,
                hint_options: list[str] | None = None) -> DriftVerdict:
    """Three tests: the edit is small (drift), the wording stays close to the codebook's, and the
    correction does not move the text further from the codebook than the OCR text was (a fix of
    OCR errors moves towards it; dropped clauses or changed options move away)."""
    reasons = []
    before, after = as_text(ocr_question, ocr_options), as_text(question, options)
    d = drift(before, after)
    if d > threshold:
        reasons.append(f"drift {d:.2f} > {threshold:.2f}: correction changes far more than OCR errors explain")
    sim = similarity(question, hint_question) if hint_question else None
    if sim is not None and sim < hint_min_similarity:
        reasons.append(f"wording similarity to codebook {sim:.2f} < {hint_min_similarity:.2f}")
    if hint_question is not None and d > 0:
        hint = as_text(hint_question, hint_options or [])
        gained = similarity(after, hint) - similarity(before, hint)
        if gained < -MOVE_AWAY_TOLERANCE:
            reasons.append(f"correction moves the text away from the codebook (similarity {gained:+.2f})")
    return DriftVerdict(round(d, 4), None if sim is None else round(sim, 4), reasons)
