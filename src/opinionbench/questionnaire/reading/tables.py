"""A battery printed as a table: an item's row, the option labels over its percentage columns,
and the stem printed above the table."""

from __future__ import annotations

import re

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from opinionbench.questionnaire.reading.anchors import skip_code
from opinionbench.questionnaire.reading.lines import TextLine, is_percent, leading_noise, text_words
from opinionbench.questionnaire.reading.options import digits
from opinionbench.questionnaire.segment import parse_percent
from opinionbench.questionnaire.text import ocr_fold


def table_row(lines: list[TextLine], i: int, labels: list[str]) -> tuple[list[str], list[str], int] | None:
    """A battery item printed as a table row: its option labels (from the header over the
    percentage columns, each header word taken by the nearest column), its percentages, and the
    index of the header's first line. None when line i is not such a row."""
    row = lines[i]
    cells = _cells(row)
    if len(cells) < len(labels) or len(labels) < 2:
        return None
    cells = cells[-len(labels):]
    centres = [(lft + rgt) / 2 for lft, rgt, _ in cells]
    bound = centres[0] - (centres[-1] - centres[0]) / (len(centres) - 1) / 2

    def mids(ln: TextLine) -> list[float]:  # of its words, not of OCR's specks (`.`) beside them
        return [(lft + rgt) / 2 for lft, rgt, w in zip(ln.lefts, ln.rights, ln.words) if any(ch.isalnum() for ch in w)]

    j = i - 1
    while j >= 0 and lines[j].page == row.page:  # the table's other rows (and their wrapped item text)
        ln = lines[j]
        right_values = sum((lft + rgt) / 2 >= bound for lft, rgt, _ in _cells(ln))
        if right_values >= len(labels) - ROW_MISSING_CELLS or all(m < bound for m in mids(ln)) or _speck(ln):
            j -= 1
            continue
        break
    header_end = j
    while j >= 0 and lines[j].page == row.page and all(m >= bound for m in mids(lines[j])):
        j -= 1
    if j == header_end:
        return None
    heads: list[list[str]] = [[] for _ in labels]
    for ln in lines[j + 1:header_end + 1]:
        for w, m in zip(ln.words, mids(ln)):
            if any(ch.isalnum() for ch in w):  # not OCR's `==»` specks between the heads
                heads[min(range(len(centres)), key=lambda c: abs(centres[c] - m))].append(w)
    texts = [" ".join(h) for h in heads]
    by_label = header_labels(lines[j + 1:header_end + 1], labels)  # wrapped heads set close together
    if [k for k, _ in by_label] == list(range(len(labels))):  # interleave: each label's own words, if all are there
        texts = [max((by_column, own), key=lambda h: fuzz.ratio(ocr_fold(h), ocr_fold(label)))
                 for by_column, (_, own), label in zip(texts, by_label, labels)]  # whichever reads more like it
    return texts, [_value(w) or "" for _, _, w in cells], j + 1


def _speck(ln: TextLine) -> bool:
    """A line of OCR speckle (`p.t`, `-`): too few letters or digits to be a head or a row."""
    return sum(ch.isalnum() for w in ln.words for ch in w) <= SPECK_ALNUM


SPECK_ALNUM = 2
ROW_MISSING_CELLS = 2  # cells of a row above that OCR may have lost or merged


def _value(word: str) -> str | None:
    return parse_percent(word) if is_percent(word) else parse_percent(digits(word))


def _cells(row: TextLine) -> list[tuple[int, int, str]]:
    """A row's percentage cells: from its first number on, the words that read as numbers, OCR's
    look-alikes included (`§1` is 51, `$3` 53); a drawn check box (`O`, `o`) is no number."""
    first = next((k for k, w in enumerate(row.words) if is_percent(w) and any(ch.isdigit() for ch in w)), None)
    if first is None:
        return []
    out = []
    for lft, rgt, w in zip(row.lefts[first:], row.rights[first:], row.words[first:]):
        if _value(w) is not None and len(w) <= 4 and any(ch.isdigit() or ch in "<§$" for ch in w):
            out.append((lft, rgt, w))
        elif len(w) == 4 and w.isdigit() and _value(w[:2]) is not None and _value(w[2:]) is not None:
            mid = (lft + rgt) // 2  # two cells OCR read as one word (`18 56` as `1856`)
            out += [(lft, mid, w[:2]), (mid + 1, rgt, w[2:])]
    return out


def stem_text(lines: list[TextLine], start: int, stop: int, stem: str) -> tuple[str, int]:
    """The printed stem above a table: the lines before `stop` whose words read as the stem."""
    want = ocr_fold(stem)
    best = (10**9, stop, "")
    for i in range(max(start, stop - 12), stop):
        text = ""
        for e in range(i, stop):
            text = f"{text} {' '.join(text_words(lines[e]))}".strip()
            stem_words = " ".join(skip_code(text.split()))
            distance = Levenshtein.distance(ocr_fold(stem_words), want)
            if distance < best[0]:
                best = (distance, i, stem_words)
    return best[2], best[1]


def find_stem(lines: list[TextLine], lo: int, hi: int, stem: str, max_lines: int = 12) -> tuple[str, int, int]:
    """The printed stem of a battery anywhere in lines lo..hi (a stem printed once, its items
    lettered below it): the run of lines reading most like it; (text, first line, line after it)."""
    want = ocr_fold(stem)
    best = (10**9, hi, hi, "")
    for i in range(max(0, lo), hi):
        text = ""
        for e in range(i, min(hi, i + max_lines)):
            text = f"{text} {' '.join(text_words(lines[e]))}".strip()
            if len(text) > 2 * len(want) + 20:
                break
            stem_words = " ".join(skip_code(text.split()))
            distance = Levenshtein.distance(ocr_fold(stem_words), want)
            if distance <= best[0]:  # ties: the nearer one
                best = (distance, i, e + 1, stem_words)
    if best[0] > 0.3 * len(want):
        return "", hi, hi
    return best[3], best[1], best[2]


HEAD_WORD_MIN_RATIO = 75.0
GLUED_LABEL_MIN_RATIO = 85.0
GLUED_HEADS = re.compile(r"(?<=[A-Za-z])[—–=]+(?=[A-Za-z])")  # `reason—sreason`: two columns' heads OCR joined
HEAD_LABEL_MIN_SHARE = 0.5


def header_labels(head_lines: list[TextLine], labels: list[str]) -> list[tuple[int, str]]:
    """Option labels printed as a table's column heads without percentages below them (so no
    column positions to go by): each codebook label whose words are (nearly all) among the head
    words, in codebook order, spelled as OCR read them; with the label's index. Words of one or
    two letters need not be found: OCR glues them to a neighbour (`Nota problem`, `Alot`)."""
    pool = [part for ln in head_lines for w in ln.words for part in GLUED_HEADS.split(w) if part]
    used = [False] * len(pool)
    out = []
    for n, label in enumerate(labels):
        glued = [k for k, p in enumerate(pool) if not used[k] and len(label.split()) > 1
                 and fuzz.ratio(ocr_fold(label.replace(" ", "")), ocr_fold(p)) >= GLUED_LABEL_MIN_RATIO]
        if glued:  # the label's words OCR read as one (`Notatall`)
            used[glued[0]] = True
            out.append((n, pool[glued[0]]))
            continue
        got, long_got = [], 0
        for word in label.split():
            scores = [(fuzz.ratio(ocr_fold(word), ocr_fold(p)), -k) for k, p in enumerate(pool) if not used[k]]
            score, k = max(scores, default=(0.0, 1))  # ties: the first one printed
            k = -k
            if score >= HEAD_WORD_MIN_RATIO:
                used[k] = True
                got.append(pool[k])
                long_got += len(word) > SHORT_WORD_CHARS
        long_words = [w for w in label.split() if len(w) > SHORT_WORD_CHARS] or label.split()
        if long_words and (long_got or len(got)) >= HEAD_LABEL_MIN_SHARE * len(long_words):
            out.append((n, " ".join(got)))
    return out


SHORT_WORD_CHARS = 2


def row_words(row: TextLine) -> list[str]:
    """A table row's item text: its words before the percentage cells, without a leading marker."""
    cells = {lft for lft, _, _ in _cells(row)}
    words = [w for lft, w in zip(row.lefts, row.words) if lft not in cells]
    while words and leading_noise(words[0]):
        words = words[1:]
    return words
