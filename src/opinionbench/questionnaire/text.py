"""Text helpers every questionnaire step shares: folding OCR's confusable characters, word-level diffs.

The reader (finding the codebook's questions in the OCR), the pipeline (what a correction
changed) and the correction backends compare OCR text with codebook text the same way, so the
helpers live here, in no one step.
"""

from __future__ import annotations

from rapidfuzz.distance import Levenshtein

# characters OCR confuses with each other, folded to one representative before comparing
_CONFUSABLE = str.maketrans({"1": "l", "|": "l", "]": "l", "[": "l", "!": "l", "i": "l", "I": "l", "j": "l",
                             "0": "o", "’": "'", "‘": "'", "“": '"', "”": '"', "…": "...", "—": "-", "–": "-"})


def ocr_fold(text: str) -> str:
    """`text` with the characters OCR confuses folded to one representative, lower-cased."""
    return text.translate(_CONFUSABLE).lower()


def merged_opcodes(o: list[str], t: list[str]) -> list[tuple[str, int, int, int, int]]:
    """Word-level opcodes with adjacent non-equal runs merged: `Nottoo much` vs `Not too much`
    is one change (`Nottoo` -> `Not too`), not an insertion next to a replacement."""
    merged: list[list] = []
    for op in Levenshtein.opcodes(o, t):
        tag = "equal" if op.tag == "equal" else "change"
        if merged and merged[-1][0] == tag == "change":
            merged[-1][2], merged[-1][4] = op.src_end, op.dest_end
        else:
            merged.append([tag, op.src_start, op.src_end, op.dest_start, op.dest_end])
    return [tuple(m) for m in merged]
