"""`codebook`: offline correction by aligning the OCR text word by word with the codebook labels.

Only differences that look like OCR errors are fixed: a run of OCR words replaced by codebook
words when the two spell nearly the same characters (`Nottoo` → `Not too`, `27°` noise), a
short run of words OCR dropped between two matching words, and noise tokens with no letters or
digits. Text that the questionnaire has and the codebook lacks is kept: the printed
questionnaire is the better source of the wording, the codebook only a spell-checker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from opinionbench.questionnaire.correct import corrections
from opinionbench.questionnaire.correct.base import Correction, Hint
from opinionbench.questionnaire.segment import Block
from opinionbench.questionnaire.text import merged_opcodes, ocr_fold

if TYPE_CHECKING:
    from opinionbench.questionnaire.correct.settings import CorrectionParams

SAME_WORDS_MIN_RATIO = 60.0  # fuzz.ratio of the joined characters for a replaced run of words
OPTION_MATCH_MIN_RATIO = 70.0
POSITIONAL_MIN_RATIO = 50.0
MAX_INSERTED_WORDS = 2


def _squash(words: list[str]) -> str:
    return ocr_fold("".join(words))


def _misread(ocr: str, truth: str) -> bool:
    """One or two characters misread in a word of the same length (`tite` for `life`), or one in a short word."""
    distance = Levenshtein.distance(ocr, truth)
    return (len(truth) >= 2 and distance <= 1) or (len(ocr) == len(truth) >= 4 and distance <= 2)


def _scale_point(ocr: str, truth: str) -> bool:
    """A numbered scale point (`7` of 0-10) read as another short number: its place in a list with
    as many options as the codebook's says which one it is; a digit has no spelling to compare."""
    return truth.strip().isdigit() and len(ocr.strip()) <= 3 and not any(ch.isalpha() for ch in ocr if ch not in "lIOoSsZzBG")


def align_text(ocr: str, truth: str) -> tuple[str, int]:
    """OCR text with OCR-like errors replaced from `truth`; returns (text, number of fixes)."""
    o, t = ocr.split(), truth.split()
    out: list[str] = []
    fixes = 0
    chunks = merged_opcodes(o, t)
    for i, (tag, s0, s1, d0, d1) in enumerate(chunks):
        src, dst = o[s0:s1], t[d0:d1]
        if tag == "equal":
            out.extend(src)
        elif src and dst:
            a, b = _squash(src), _squash(dst)
            if fuzz.ratio(a, b) >= SAME_WORDS_MIN_RATIO or _misread(a, b):
                out.extend(dst)
                fixes += 1
            else:
                out.extend(src)
        elif dst:  # words the OCR dropped
            if len(dst) <= MAX_INSERTED_WORDS and o and len(chunks) > 1:
                out.extend(dst)
                fixes += 1
        else:  # words only the OCR has: drop pure noise, keep real text
            kept = [w for w in src if any(ch.isalnum() for ch in w)]
            fixes += len(src) - len(kept)
            out.extend(kept)
    return " ".join(out), fixes


@corrections.register("codebook")
class CodebookCorrection:
    name = "codebook"

    def __init__(self, params: CorrectionParams | None = None) -> None:
        self.params = params

    def correct(self, block: Block, hint: Hint | None) -> Correction:
        if hint is None:
            return Correction(block.wording, list(block.options), self.name, notes=["no codebook entry: OCR text kept"])
        question, fixes = align_text(block.wording, hint.question)
        notes = [f"wording: {fixes} OCR fixes"] if fixes else []
        options = []
        # a topline prints the options in codebook order: with as many options, align by position
        positional = len(block.options) == len(hint.options)
        for i, label in enumerate(block.options):
            if positional and _scale_point(label, hint.options[i]):
                options.append(hint.options[i])
                if label != hint.options[i]:
                    notes.append(f"option {label!r} -> {hint.options[i]!r} (scale point by position)")
                continue
            if positional and fuzz.ratio(ocr_fold(label), ocr_fold(hint.options[i])) >= POSITIONAL_MIN_RATIO:
                match = (hint.options[i],)
            else:
                match = process.extractOne(ocr_fold(label), hint.options, scorer=fuzz.ratio, processor=ocr_fold,
                                           score_cutoff=OPTION_MATCH_MIN_RATIO)
            if match is None:
                options.append(label)
                notes.append(f"option {label!r}: no codebook label close enough, kept")
                continue
            fixed, n = align_text(label, match[0])
            options.append(fixed)
            if n:
                notes.append(f"option {label!r} -> {fixed!r}")
        return Correction(question, options, self.name, notes=notes)
