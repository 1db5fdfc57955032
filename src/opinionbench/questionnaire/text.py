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

# letters and marks OCR reads for a digit, read as that digit (None: a mark dropped, `3°9` 39)
_DIGIT_LOOKALIKES = str.maketrans({"§": "5", "S": "5", "s": "5", "O": "0", "o": "0", "l": "1", "I": "1", "|": "1",
                                   "i": "1", "Z": "2", "z": "2", "B": "8", "G": "6", "g": "9", "q": "9", "°": None,
                                   "*": None, "'": None, "\"": None})


def fold_digits(text: str) -> str:
    """`text` with OCR's look-alikes of digits read as the digits (`S` 5, `l0` 10, `3°9` 39)."""
    return text.translate(_DIGIT_LOOKALIKES)


def looks_numeric(text: str) -> bool:
    """Whether `text` has no letters once OCR's look-alikes of digits are read as digits (`l0`, `S`)."""
    return not any(ch.isalpha() for ch in fold_digits(text))


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
