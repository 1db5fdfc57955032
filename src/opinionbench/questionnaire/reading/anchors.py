"""Where each codebook question starts: per question the lines that may start it (its printed code,
its wording, its battery item), then the order-preserving choice with the most support."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from opinionbench.questionnaire.batteries import split_stem
from opinionbench.questionnaire.correct.base import Hint
from opinionbench.questionnaire.layout import fold_code, printed_code
from opinionbench.questionnaire.reading.lines import BULLET, MARKER, NUMBERING, TextLine, is_percent, row_text_words
from opinionbench.questionnaire.reading.settings import ReaderSettings
from opinionbench.questionnaire.text import ocr_fold

NEAR_CODE_PENALTY = 10.0
FIRST_LINE_MIN_RATIO = 60.0
EXACT_CODE_WEIGHT = 30.0  # an exact printed code is worth more than any wording match (at most 21)
FOLDED_CODE_SCORE = 99.0  # the code up to case and OCR look-alikes (`HAPPEND.` for HAPPENb or HAPPENd)
FOLDED_CODE_WEIGHT = 20.0  # ... worth less: the wording decides between the look-alikes


@dataclass
class Target:
    """What anchors one codebook question: its code, its wording and, in a battery, its item."""

    qcode: str
    hint: Hint
    stem: str | None
    item: str | None


def targets(hints: dict[str, Hint]) -> list[Target]:
    """Codebook questions in order, with the stem and item of those that share a stem with a neighbour."""
    codes = list(hints)
    out = []
    for i, code in enumerate(codes):
        stem = item = None
        for j in (i - 1, i + 1):
            if 0 <= j < len(codes) and hints[codes[j]].options == hints[code].options:
                split = split_stem([hints[code].question, hints[codes[j]].question])
                if split:
                    stem, item = split[0], split[1][0]
                    break
        out.append(Target(code, hints[code], stem, item))
    return out


@dataclass(frozen=True)
class LineKeys:
    """What anchoring compares of one line, computed once per line (not once per codebook question)."""

    text: tuple[str, str]  # folded text from this line on (PREFIX_LINES lines), as printed / without a leading code
    first: tuple[str, str]  # the same for this line alone
    codes: tuple[tuple[str, str], ...]  # the first one to three words joined: (as printed, folded)
    first_lower: int  # lower-case letters in the first word (a code in capitals has none)
    percents: int  # percentage-like words on the line (a table row has one per option)


PREFIX_LINES = 16
PREFIX_CHARS = 600
MIN_ITEM_CHARS = 6  # a shorter battery item (`Crime`) is evidence only as a line of its own
SHORT_ITEM_MIN_CHARS = 4  # `Yes`, `Men`: no evidence at all
SHORT_ITEM_MIN_RATIO = 90.0
ITEM_MIN_RATIO = 80.0  # a battery item's own words near where its wording should have them


def skip_code(words: list[str]) -> list[str]:
    """The words after a leading printed code whose question is not known yet (`WORRY.`, `[Q4]`,
    `NEW_Device Type`): capitals, underscores or brackets in front of the wording; or an item's
    letter without its period."""
    while len(words) > 1 and (code_piece(words[0]) and len(words[0]) > 3 or words[0][:1] in "[({"
                              or LOST_MARKER.match(words[0]) and words[1][:1].isupper()):
        words = words[1:]
    return words


LOST_MARKER = re.compile(r"^[a-z]$")  # `a The U.S.`: an item's letter whose period OCR lost


def code_key(code: str) -> str:
    """A code folded (`fold_code`) down to its letters and digits: OCR reads an underscore as
    anything (`INEQS..j` for `INEQ5_j`)."""
    return "".join(ch for ch in fold_code(code) if ch.isalnum())


def line_keys(lines: list[TextLine]) -> list[LineKeys]:
    words = [row_text_words(ln) for ln in lines]
    folded = [ocr_fold(" ".join(w)) for w in words]
    skipped = [ocr_fold(" ".join(skip_code(list(w)))) for w in words]
    keys = []
    for i, ln in enumerate(lines):
        follow = " ".join(f for f in folded[i + 1:i + PREFIX_LINES] if f)
        code_words = ln.words[:5]
        while len(code_words) > 1 and (NUMBERING.match(code_words[0]) or MARKER.match(code_words[0])
                                       or BULLET.match(code_words[0])):
            code_words = code_words[1:]  # `Q7.`, `7.`, `a.`, `•` before a code
        printed = [printed_code("".join(code_words[:k])) for k in range(1, min(3, len(code_words)) + 1)]
        codes = tuple((code, code_key(code)) for code in printed)
        keys.append(LineKeys(
            text=(f"{folded[i]} {follow}".strip()[:PREFIX_CHARS], f"{skipped[i]} {follow}".strip()[:PREFIX_CHARS]),
            first=(folded[i], skipped[i]),
            codes=codes,
            first_lower=sum(ch.islower() for ch in code_words[0]) if code_words else 0,
            percents=sum(map(is_percent, ln.words)),
        ))
    return keys


def code_score(key: LineKeys, qcode: str, want: str, settings: ReaderSettings, ambiguous: bool = False) -> float:
    """100 when the line starts with the question's code (in any print form: `CODE.`, `[CODE]`,
    split by OCR into up to three pieces), a near spelling scored lower than an exact wording.
    `want` is the code folded (`code_key`); `ambiguous`: another codebook code folds to the same
    characters (`NATPROBS_i`, `NATPROBS_1`), so only the code exactly as printed counts as exact."""
    if not key.codes or (key.first_lower > 1 and not any(ch.islower() for ch in qcode)):
        return 0.0  # `Worry` (a word) is not the code `WORRYA`: a code without lower case is printed in capitals
    best = 0.0
    for printed, got in key.codes:
        if not got:
            continue
        if printed == qcode:
            score = 100.0
        elif got == want and not ambiguous:
            score = FOLDED_CODE_SCORE
        else:
            score = fuzz.ratio(got, want) - NEAR_CODE_PENALTY - (1.0 if got == want else 0.0)
        best = max(best, score)
    return best if best >= settings.code_min_ratio - NEAR_CODE_PENALTY else 0.0


def code_piece(word: str) -> bool:
    """A piece OCR split off a code (`J OBTRAIN`, `Q4 c`, `NEW Device_Type`): short, without
    lower-case letters, or with an underscore."""
    return len(word) <= 3 or not any(ch.islower() for ch in word) or "_" in word


def starts_like(text: str, first_line: str, wording: str) -> float:
    """Similarity of the text from a line on with a wording, provided the line itself begins like
    it (a routing line `ASK ALL:` above a question reads like the question only with the next line)."""
    head = min(len(first_line), len(wording))
    if head and fuzz.ratio(first_line[:head], wording[:head]) < FIRST_LINE_MIN_RATIO:
        return 0.0
    return fuzz.ratio(text, wording)


def anchor_scores(lines: list[TextLine], tgts: list[Target], settings: ReaderSettings) -> list[list[tuple[int, float, str]]]:
    """Per codebook question, the lines that may start it: (line index, weight, how).

    A weight is what a match is worth above chance: the similarity above the threshold, far more
    for the exact printed code. So the chosen anchors are the best-supported ones, not merely as
    many as possible: a codebook question that is not printed does not take its sibling's line.
    A line that prints one question's exact code starts no other question (unless that code is
    printed on two lines: one is another question's code misread, `COMMIMPF` for `COMMIMPE`).
    """
    out: list[list[tuple[int, float, str]]] = []
    keys = line_keys(lines)
    coded: dict[int, int] = {}  # line -> question whose exact code it prints
    folds: dict[str, int] = {}
    for t in tgts:
        folds[code_key(t.qcode)] = folds.get(code_key(t.qcode), 0) + 1
    for t in tgts:
        want = code_key(t.qcode)
        ambiguous = folds[want] > 1
        # a battery item's wording is compared whole: its distinguishing words are at the end
        wording = ocr_fold(t.hint.question)[:PREFIX_CHARS if t.item else 160]
        item = ocr_fold(t.item)[:160] if t.item and len(t.item) >= MIN_ITEM_CHARS else None
        short = ocr_fold(t.item) if t.item and SHORT_ITEM_MIN_CHARS <= len(t.item) < MIN_ITEM_CHARS else None
        stem_len = len(ocr_fold(t.stem)) if t.stem else 0
        labels = [ocr_fold(label) for label in t.hint.options if len(label) >= MIN_OPTION_SUPPORT_CHARS]
        cands = []
        for i, key in enumerate(keys):
            code = code_score(key, t.qcode, want, settings, ambiguous)
            wording_score = max(starts_like(key.text[v][:len(wording)], key.first[v], wording) for v in (0, 1))
            if wording_score < settings.anchor_min_ratio:
                wording_score = max(wording_score, late_start(key, wording))
            if item and wording_score >= settings.anchor_min_ratio and not any(
                    fuzz.partial_ratio(item, key.text[v][max(0, stem_len - 40):len(wording) + 40]) >= ITEM_MIN_RATIO
                    for v in (0, 1)):
                wording_score = 0.0  # the shared stem with a sibling's item: not this question
            # a line starting with the item: a table row, or an item lettered below its stem
            item_score = max(max(starts_like(key.text[v][:len(item)], key.first[v], item),
                                 fuzz.ratio(key.first[v], item))  # the line alone is the item (OCR lost a space)
                             for v in (0, 1)) if item else 0.0
            if short:  # the line is the item and nothing else (`c. Crime`)
                item_score = max(fuzz.ratio(key.first[v].strip(" .,:;"), short) for v in (0, 1))
                item_score = item_score if item_score >= SHORT_ITEM_MIN_RATIO else 0.0
            text_score, how = max((wording_score, "wording"), (item_score, "item"))
            weight = text_score - settings.anchor_min_ratio + 1 if text_score >= settings.anchor_min_ratio else 0.0
            if code >= FOLDED_CODE_SCORE:
                if code == 100.0:  # as printed, case and all: no other question starts on this line
                    coded[i] = len(out)
                weight = (EXACT_CODE_WEIGHT if code == 100.0 else FOLDED_CODE_WEIGHT) + weight
                how = how if text_score >= settings.anchor_min_ratio else "code"
            elif code and weight == 0.0:
                weight, how = (code - (settings.code_min_ratio - NEAR_CODE_PENALTY)) / 2 + 1, "code"
            if weight > 0:
                cands.append((i, weight + option_support(key, labels), how))
        out.append(cands)
    printed = {q: list(coded.values()).count(q) for q in set(coded.values())}
    coded = {i: q for i, q in coded.items() if printed[q] == 1}  # printed twice: one is another's code misread
    for q, cands in enumerate(out):
        out[q] = sorted((c for c in cands if coded.get(c[0], q) == q), key=lambda c: -c[1])[:6]
    return out


LATE_START_WORDS = 3  # OCR's speckle and a garbled code (`a eovstzzi.`) before the wording's first word
LATE_START_PENALTY = 5.0


def late_start(key: LineKeys, wording: str) -> float:
    """How well the text from a line on reads as the wording when the wording's first word is
    among the line's first few, after junk no rule recognises as a code or a marker; a little
    less than a line that starts with it."""
    head = wording.split(" ", 1)[0]
    words = key.first[0].split()
    for p in range(1, min(LATE_START_WORDS + 1, len(words))):
        if len(head) >= 2 and words[p] == head:
            at = len(" ".join(words[:p])) + 1
            return starts_like(key.text[0][at:at + len(wording)], key.first[0][at:], wording) - LATE_START_PENALTY
    return 0.0


OPTION_SUPPORT = 5.0  # at most this added for the question's own option labels printed below the line
MIN_OPTION_SUPPORT_CHARS = 8  # `Yes`, `Some`: printed under every other question too
OPTION_SUPPORT_MIN_RATIO = 85.0


def option_support(key: LineKeys, labels: list[str]) -> float:
    """Support from the question's own (long) option labels printed in the text below the line:
    questions with one wording (`Please choose the statement that comes closer to your own views`)
    differ only in their options."""
    if not labels:
        return 0.0
    found = sum(fuzz.partial_ratio(label, key.text[0]) >= OPTION_SUPPORT_MIN_RATIO for label in labels)
    return OPTION_SUPPORT * found / len(labels)


def choose_anchors(scores: list[list[tuple[int, float, str]]]) -> list[tuple[int, str] | None]:
    """The order-preserving choice of one line per question (or none) with the highest total score."""
    cands = sorted((q, i, s, how) for q, row in enumerate(scores) for i, s, how in row)
    best = [0.0] * len(cands)
    back = [-1] * len(cands)
    for a, (qa, ia, sa, _) in enumerate(cands):
        best[a] = sa
        for b in range(a):
            qb, ib, _, _ = cands[b]
            if qb < qa and ib < ia and best[b] + sa > best[a]:
                best[a], back[a] = best[b] + sa, b
    chosen: list[tuple[int, str] | None] = [None] * len(scores)
    if not cands:
        return chosen
    a = max(range(len(cands)), key=lambda k: best[k])
    while a >= 0:
        q, i, _, how = cands[a]
        chosen[q] = (i, how)
        a = back[a]
    return chosen
