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
from opinionbench.questionnaire.text import fold_digits, looks_numeric, merged_opcodes, ocr_fold

if TYPE_CHECKING:
    from opinionbench.questionnaire.correct.settings import CorrectionParams

SAME_WORDS_MIN_RATIO = 60.0  # fuzz.ratio of the joined characters for a replaced run of words
OPTION_MATCH_MIN_RATIO = 70.0
POSITIONAL_MIN_RATIO = 50.0
MAX_INSERTED_WORDS = 2


def _squash(words: list[str]) -> str:
    return ocr_fold("".join(words))


def _misread(ocr: str, truth: str) -> bool:
    """One or two characters misread in a word of the same length (`tite` for `life`), or one in a
    short word, or a number read with letters for its digits (`S` for `5`)."""
    distance = Levenshtein.distance(ocr, truth)
    # both sides come folded (`ocr_fold`: 1 and 0 as l and o), so the digits read are folded alike
    digit_lookalike = any(ch.isdigit() for ch in truth) and ocr_fold(fold_digits(ocr)) == truth
    return (len(truth) >= 2 and distance <= 1) or (len(ocr) == len(truth) >= 4 and distance <= 2) or digit_lookalike


MARK_CHARS = 2  # `0 -`, `O`, `Q-`: a scale number and its dash, which OCR reads as anything that short


def _same_words(ocr: str, truth: str) -> bool:
    """The label's words are all there and nothing else but marks: only tokens of a scale point and
    its dash differ (`0 O Worst possible life` for `0 - Worst possible life`)."""
    def words(text: str) -> list[str]:
        return [w for w in ocr_fold(text).split() if len(w.strip(".,;:()")) > MARK_CHARS]
    short = [w for w in truth.split() if len(w) <= MARK_CHARS]
    return bool(short) and bool(words(truth)) and words(ocr) == words(truth) and len(ocr.split()) == len(truth.split())


SCALE_POINT_MAX_CHARS = 8  # `(4)` read as `NM 2aq@`: speckle around a bare number, not another label


def _scale_point(ocr: str, truth: str) -> bool:
    """A numbered scale point (`7` or `(7)` of 0-10) read as another number, as a number with the
    percentages beside it (`20021`), or garbled: its place in a list with as many options as the
    codebook's says which one it is; a bare number has no spelling to compare."""
    if not truth.strip().strip("()").isdigit():
        return False
    ocr = ocr.strip()
    return looks_numeric(ocr) and (len(ocr) <= 3 or truth.strip("()") in ocr) or len(ocr) <= SCALE_POINT_MAX_CHARS


def _cut_short(ocr: str, truth: str) -> bool:
    """The label read without its first or last words (a wrapped line OCR lost or gave to a
    neighbour: `Very` for `Very dissatisfied`): its words begin or end the codebook label's."""
    got, want = ocr_fold(ocr).split(), ocr_fold(truth).split()
    return 0 < len(got) < len(want) and (want[:len(got)] == got or want[-len(got):] == got)


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


SNAP_MIN_RATIO = 70.0  # a label this close to one codebook label of the question ...
SNAP_MARGIN = 10.0  # ... and this much closer to it than to any other is that label, garbled
PLACED_SNAP_MIN_RATIO = 75.0  # at its own place in the list: closer than to any other is enough (`Hurting a tor`)


def _garbled(label: str, labels: list[str], i: int | None) -> str | None:
    """The codebook label that an OCR label garbled in several words (`Nevtoo cnurh pressure`,
    `Not so fenportent`) still reads as, far more than as any other label of the question (at
    its place i, when the list is as long as the codebook's: closer than to any other), or None. A label with more words
    than the codebook's may hold text the questionnaire has and the codebook lacks: not snapped."""
    scores = [fuzz.ratio(ocr_fold(label), ocr_fold(other)) for other in labels]
    best = max(range(len(labels)), key=lambda k: scores[k]) if labels else None
    if best is None or i is not None and best != i or len(label.split()) > len(labels[best].split()):
        return None
    rest = [v for k, v in enumerate(scores) if k != best]
    margin = scores[best] - max(rest, default=0.0)
    # at its own place, being closer to it than to any other label is enough: the place tells near twins apart
    at_place = i is not None and scores[best] >= PLACED_SNAP_MIN_RATIO and margin > 0
    return labels[best] if at_place or scores[best] >= SNAP_MIN_RATIO and margin >= SNAP_MARGIN else None


def _aligned(label: str, labels: list[str], place: int | None) -> tuple[str, str | None]:
    """The OCR label with its OCR-like word errors fixed from its codebook label (the one at its
    place, when it reads like it, else the closest), and the note saying so."""
    if place is not None and fuzz.ratio(ocr_fold(label), ocr_fold(labels[place])) >= POSITIONAL_MIN_RATIO:
        match = (labels[place],)
    else:
        match = process.extractOne(ocr_fold(label), labels, scorer=fuzz.ratio, processor=ocr_fold,
                                   score_cutoff=OPTION_MATCH_MIN_RATIO)
    if match is None:
        return label, f"option {label!r}: no codebook label close enough, kept"
    fixed, n = align_text(label, match[0])
    return fixed, f"option {label!r} -> {fixed!r}" if n else None


def _whole_label(label: str, labels: list[str], place: int | None) -> tuple[str, str] | None:
    """(codebook label, why) for an OCR label that is that label with only marks differing or cut
    short (at its place in the list), or garbled beyond word-by-word repair (`_garbled`)."""
    if place is not None and _same_words(label, labels[place]):
        return labels[place], "marks by position"
    if place is not None and _cut_short(label, labels[place]):
        return labels[place], "cut short, by position"
    snapped = _garbled(label, labels, place)
    return (snapped, "closest label") if snapped else None


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
            place = i if positional else None
            if positional and _scale_point(label, hint.options[i]):
                options.append(hint.options[i])
                if label != hint.options[i]:
                    notes.append(f"option {label!r} -> {hint.options[i]!r} (scale point by position)")
                continue
            fixed, note = _aligned(label, hint.options, place)
            whole = _whole_label(label, hint.options, place) if fixed not in hint.options else None
            if whole:  # what word-by-word alignment could not fix, the label as a whole may
                fixed, note = whole[0], f"option {label!r} -> {whole[0]!r} ({whole[1]})"
            options.append(fixed)
            notes += [note] if note else []
        return Correction(question, options, self.name, notes=notes)
