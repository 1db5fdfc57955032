"""OCR words → question blocks, anchored on what the codebook already says, not on one layout.

The layout segmenter (`segment.py`) knows where our own topline puts codes, wording and
percentages; a questionnaire from another house or year breaks it. The codebook of the same
wave already tells what must be on the pages: every question's code, wording, option labels in
order and (from the microdata) its topline. So the reader only has to find them:

1. lines from the word boxes, per text column (a gutter free of words splits a page), in
   reading order; running headers, footers and page numbers dropped;
2. each codebook question anchored on the line where its printed code or the start of its
   wording (or, in a battery, its item) appears, choosing the order-preserving set of anchors
   with the highest total similarity, so identical wordings fall into place by order;
3. its options found in the lines up to the next anchor by their labels, whatever marks them
   (`a.`, `1.`, nothing) and wherever the percentages sit; several percentage columns (trend
   toplines) are told apart by the weighted topline; a battery printed as a table takes its
   options from the header over the percentage columns and its stem from above the table.

The result is the same `Block` the segmenter returns, so correction, review and provenance do
not change. Without a codebook there is nothing to anchor on and the segmenter is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from opinionbench.questionnaire.batteries import split_stem
from opinionbench.questionnaire.correct.base import Hint
from opinionbench.questionnaire.correct.codebook import ocr_fold
from opinionbench.questionnaire.layout import ROUTING, fold_code, printed_code, routing_of
from opinionbench.questionnaire.ocr import BAND
from opinionbench.questionnaire.reconcile import expected_percents
from opinionbench.questionnaire.segment import Block, parse_percent

MARKER = re.compile(r"^(\(?[a-zA-Z]{1,2}[.)]|\(?\d{1,2}[.)])$")  # `a.` `b)` `(c)` `1.` `12)`
# `Q7.` `Q.12` `Q3a:`, and as OCR reads them (`Q?7.`, `Ql11.`, `Qiz.`)
NUMBERING = re.compile(r"^[qQ]?Q\.?[?]?[\dOoIlizZsS|!]{1,4}[a-z]?[.:,]$|^Q\.?\d{1,3}[a-z]?[.:,]?$")
PAGE_NUMBER = re.compile(r"^(page\s*)?[-–]?\s*\d{1,4}\s*[-–]?(\s*of\s*\d{1,4})?$", re.IGNORECASE)
MONTH = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*[.,]?$", re.IGNORECASE)
YEAR = re.compile(r"^(19|20)\d\d[.,]?$")
DROPPED_WORD_PENALTY = 25.0
NEAR_CODE_PENALTY = 10.0
FIRST_LINE_MIN_RATIO = 60.0
EXACT_CODE_WEIGHT = 30.0  # an exact printed code is worth more than any wording match (at most 21)
FOLDED_CODE_SCORE = 99.0  # the code up to case and OCR look-alikes (`HAPPEND.` for HAPPENb or HAPPENd)
FOLDED_CODE_WEIGHT = 20.0  # ... worth less: the wording decides between the look-alikes
REPEATED_MIN_RATIO = 85.0
CODE_DROP_MIN_RATIO = 70.0  # a printed code in front of wording already anchored: looser than for anchoring


@dataclass(frozen=True)
class ReaderSettings:
    """The reader's few knobs; `benchmarks/ocr_accuracy.py` chooses them leaving one style out."""

    anchor_min_ratio: float = 80.0  # wording (or item) similarity, 0-100, for a line to start a question
    code_min_ratio: float = 88.0  # printed code vs codebook code after folding OCR confusions
    option_min_ratio: float = 70.0  # OCR'd option label vs codebook label
    band: float = BAND  # top and bottom share of a page where running headers and footers live
    max_label_lines: int = 6  # an option label may wrap over this many lines (narrow columns)


@dataclass
class TextLine:
    page: int
    column: int
    top: int
    bottom: int
    left: int
    right: int
    words: list[str]
    lefts: list[int]
    rights: list[int]
    confs: list[float]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def read_lines(words: pd.DataFrame, settings: ReaderSettings = ReaderSettings()) -> list[TextLine]:
    """Words → lines in reading order: page, then text column (`ocr.text_columns`), then top;
    running headers, footers and page numbers dropped."""
    lines: list[TextLine] = []
    if "column" not in words:  # words OCR'd before pages were split into text columns
        words = words.assign(column=0)
    for page_no, page in words.groupby("page", sort=True):
        for (_col, _b, _p, _l), g in page.groupby(["column", "block", "par", "line"], sort=False):
            g = g.sort_values("left")
            lines.append(TextLine(
                page=int(page_no), column=int(g["column"].iloc[0]), top=int(g["top"].min()),
                bottom=int((g["top"] + g["height"]).max()), left=int(g["left"].min()),
                right=int((g["left"] + g["width"]).max()), words=[str(t) for t in g["text"]],
                lefts=[int(v) for v in g["left"]], rights=[int(v) for v in g["left"] + g["width"]],
                confs=[float(c) for c in g["conf"] if c >= 0]))
    lines.sort(key=lambda ln: (ln.page, ln.column, ln.top))
    return _drop_running_lines(lines, words, settings)


def _drop_running_lines(lines: list[TextLine], words: pd.DataFrame, settings: ReaderSettings) -> list[TextLine]:
    """Page numbers (and the digits of a header cut by a column split), and lines repeated in the
    top or bottom band of several pages (running headers)."""
    heights = words.groupby("page")["page_height"].first().to_dict()
    pages = len(heights)

    def in_band(ln: TextLine) -> bool:
        h = heights[ln.page]
        return ln.top < h * settings.band or ln.bottom > h * (1 - settings.band)

    def key(ln: TextLine) -> str:
        return re.sub(r"[\W\d_]+", "", ln.text.lower())

    band_lines = [(key(ln), ln.page) for ln in lines if in_band(ln)]
    repeated = set()
    for k, _page in band_lines:  # the same line (up to OCR errors) in the band of several pages
        pages_with = {p for other, p in band_lines if other and fuzz.ratio(k, other) >= REPEATED_MIN_RATIO}
        if k and len(pages_with) >= max(2, pages // 2):
            repeated.add(k)
    return [ln for ln in lines
            if not (in_band(ln) and (PAGE_NUMBER.match(ln.text.strip()) or key(ln) in repeated))
            and not (ln.top < heights[ln.page] * settings.band and not any(ch.isalpha() for ch in ln.text))]


def _is_percent(token: str) -> bool:
    return parse_percent(token) is not None


def _text_words(ln: TextLine) -> list[str]:
    """The line's words without a leading marker or numbering, and without percentages at either end."""
    words = list(ln.words)
    while words and (MARKER.match(words[0]) or NUMBERING.match(words[0]) or _is_percent(words[0])):
        words = words[1:]
    while words and _is_percent(words[-1]):
        words = words[:-1]
    return words


def _content(ln: TextLine) -> list[str]:
    """The line's words without a leading marker or numbering, and without any percentages (option lines)."""
    return [w for w in _text_words(ln) if not _is_percent(w)]


def _is_table_header(ln: TextLine) -> bool:
    """Column heads of survey dates (`Jul 2018 Jan 2018`, OCR'd as `Oec 2020` too) or of numbers: no prose."""
    years = sum(bool(YEAR.match(w)) for w in ln.words)
    short = all(YEAR.match(w) or MONTH.match(w) or _is_percent(w) or len(w) <= 4 or not any(ch.isalpha() for ch in w)
                for w in ln.words)
    numbers = all(_is_percent(w) or not any(ch.isalpha() for ch in w) for w in ln.words)
    return numbers or (short and years >= max(1, len(ln.words) // 3))


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


PREFIX_LINES = 8
PREFIX_CHARS = 400


def _skip_code(words: list[str]) -> list[str]:
    """The words after a leading printed code whose question is not known yet (`WORRY.`, `[Q4]`,
    `NEW_Device Type`): capitals, underscores or brackets in front of the wording."""
    while len(words) > 1 and (_code_piece(words[0]) and len(words[0]) > 3 or words[0][:1] in "[("):
        words = words[1:]
    return words


def line_keys(lines: list[TextLine]) -> list[LineKeys]:
    words = [_text_words(ln) for ln in lines]
    folded = [ocr_fold(" ".join(w)) for w in words]
    skipped = [ocr_fold(" ".join(_skip_code(list(w)))) for w in words]
    keys = []
    for i, ln in enumerate(lines):
        follow = " ".join(f for f in folded[i + 1:i + PREFIX_LINES] if f)
        code_words = ln.words[:4]
        while len(code_words) > 1 and NUMBERING.match(code_words[0]):
            code_words = code_words[1:]
        printed = [printed_code("".join(code_words[:k])) for k in range(1, min(3, len(code_words)) + 1)]
        codes = tuple((code, fold_code(code)) for code in printed)
        keys.append(LineKeys(
            text=(f"{folded[i]} {follow}".strip()[:PREFIX_CHARS], f"{skipped[i]} {follow}".strip()[:PREFIX_CHARS]),
            first=(folded[i], skipped[i]),
            codes=codes,
            first_lower=sum(ch.islower() for ch in code_words[0]) if code_words else 0,
            percents=sum(map(_is_percent, ln.words)),
        ))
    return keys


def _code_score(key: LineKeys, qcode: str, want: str, settings: ReaderSettings, ambiguous: bool = False) -> float:
    """100 when the line starts with the question's code (in any print form: `CODE.`, `[CODE]`,
    split by OCR into up to three pieces), a near spelling scored lower than an exact wording.
    `want` is the code folded (`fold_code`); `ambiguous`: another codebook code folds to the same
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


def _code_piece(word: str) -> bool:
    """A piece OCR split off a code (`J OBTRAIN`, `Q4 c`, `NEW Device_Type`): short, without
    lower-case letters, or with an underscore."""
    return len(word) <= 3 or not any(ch.islower() for ch in word) or "_" in word


def _starts_like(text: str, first_line: str, wording: str) -> float:
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
    A line that prints one question's exact code starts no other question.
    """
    out: list[list[tuple[int, float, str]]] = []
    keys = line_keys(lines)
    coded: dict[int, int] = {}  # line -> question whose exact code it prints
    folds: dict[str, int] = {}
    for t in tgts:
        folds[fold_code(t.qcode)] = folds.get(fold_code(t.qcode), 0) + 1
    for t in tgts:
        want = fold_code(t.qcode)
        ambiguous = folds[want] > 1
        wording = ocr_fold(t.hint.question)[:160]
        item = ocr_fold(t.item)[:160] if t.item else None
        n_labels = len(t.hint.options) + len(t.hint.refusal_options)
        cands = []
        for i, key in enumerate(keys):
            code = _code_score(key, t.qcode, want, settings, ambiguous)
            wording_score = max(_starts_like(key.text[v][:len(wording)], key.first[v], wording) for v in (0, 1))
            # an item alone on a line is a battery printed as a table: its row holds the percentages
            item_score = _starts_like(key.text[0][:len(item)], key.first[0], item) \
                if item and key.percents >= n_labels else 0.0
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
                cands.append((i, weight, how))
        out.append(cands)
    for q, cands in enumerate(out):
        out[q] = sorted((c for c in cands if coded.get(c[0], q) == q), key=lambda c: -c[1])[:6]
    return out


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


def _label_match(label: str, lines: list[TextLine], j: int, settings: ReaderSettings) -> tuple[float, int, str]:
    """How well lines j.. (one to `max_label_lines`) read as `label`: (score, lines used, OCR'd label)."""
    if label.strip().isdigit():
        return _number_label_match(label.strip(), lines[j]) if j < len(lines) else (0.0, 0, "")
    want = ocr_fold(label)
    best = (0.0, 0, "")
    words: list[str] = []
    for m in range(settings.max_label_lines):
        if j + m >= len(lines):
            break
        ln = lines[j + m]
        if m and (any(_is_percent(w) for w in ln.words) or MARKER.match(ln.words[0])):
            break  # the next option's line
        words = words + _content(ln)
        # the best run of words: OCR noise (a misread percentage) may sit at either end
        for a in range(min(2, len(words))):
            for b in range(a + 1, len(words) + 1):
                text = " ".join(words[a:b])
                score = fuzz.ratio(ocr_fold(text), want) - DROPPED_WORD_PENALTY * _dropped(words[:a] + words[b:])
                if score > best[0]:
                    best = (score, m + 1, text)
    return best


_DIGIT_LOOKALIKES = str.maketrans({"§": "5", "S": "5", "s": "5", "O": "0", "o": "0", "l": "1", "I": "1", "|": "1",
                                   "i": "1", "Z": "2", "z": "2", "B": "8", "G": "6", "g": "9", "q": "9", "°": None,
                                   "*": None, "'": None, "\"": None})


def _digits(word: str) -> str:
    """A word read where a number is expected, with OCR's look-alikes folded (`§` 5, `O` 0, `3°9` 39)."""
    return word.strip(".)").translate(_DIGIT_LOOKALIKES)


def _split_number_label(word: str, label: str) -> str | None:
    """The percentage in a word that also holds a numeric label (`11`: 1% of `1`; `135`: 13% of `5`)."""
    core = _digits(word)
    for rest in (core[: -len(label)] if core.endswith(label) else None,
                 core[len(label):] if core.startswith(label) else None):
        if rest and parse_percent(rest) is not None:
            return parse_percent(rest)
    return None


def _number_label_match(label: str, ln: TextLine) -> tuple[float, int, str]:
    """A numeric label (a scale point `5`) is a whole word of its line, or glued to its percentage."""
    score = 0.0
    for w in ln.words:
        if w.strip(".)") == label:
            score = max(score, 100.0)
        elif _digits(w) == label or _split_number_label(w, label) is not None:
            score = max(score, 90.0)
    score -= DROPPED_WORD_PENALTY * _dropped(ln.words)
    return (score, 1, label) if score > 0 else (0.0, 0, "")


def _dropped(words: list[str]) -> int:
    """Words left out of an option label that look like words, not like OCR specks (`ie)`, `~`)."""
    return sum(sum(ch.isalpha() for ch in w) >= 3 for w in words)


def _percents(ln: TextLine, label_text: str) -> list[str]:
    """The line's percentages in print order, without the label itself when the label is a number."""
    label = label_text.strip()
    if not label.isdigit():
        return [v for v in (parse_percent(w) for w in ln.words) if v is not None]
    words = list(ln.words)
    exact = [k for k, w in enumerate(words) if w.strip(".)") == label]
    if exact and sum(_is_percent(w) for w in words) > 1:
        del words[exact[-1]]
    elif not exact:
        words = [_split_number_label(w, label) or w for w in words]
    return [v for v in (parse_percent(w) for w in words) if v is not None]


def _column_choice(percents: list[list[str]], expected: list[float] | None) -> int:
    """Which of several percentage columns is this wave's: the one nearest the weighted topline."""
    width = max((len(p) for p in percents), default=0)
    if width <= 1 or not expected:
        return 0

    def cost(c: int) -> float:
        total = 0.0
        for p, e in zip(percents, expected):
            if c >= len(p):
                total += 100.0
            else:
                total += abs((0.0 if p[c] == "<1" else float(p[c])) - e)
        return total

    return min(range(width), key=cost)


@dataclass
class Found:
    options: list[str]
    percents: list[list[str]]
    first: int  # index of the first option line (len(region) when none)
    last: int


def find_options(labels: list[str], region: list[TextLine], settings: ReaderSettings) -> Found:
    """Codebook labels located in order in the region's lines (a monotone alignment)."""
    n, m = len(labels), len(region)
    table = [[_label_match(label, region, j, settings) for j in range(m)] for label in labels]
    # best[k][j]: best total for labels k.. using lines j..
    best = [[0.0] * (m + 2) for _ in range(n + 1)]
    take = [[False] * (m + 1) for _ in range(n + 1)]
    for k in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            skip_line = best[k][j + 1]
            skip_label = best[k + 1][j]
            score, used, _ = table[k][j]
            use = score + best[k + 1][min(j + max(used, 1), m)] if score >= settings.option_min_ratio else -1
            best[k][j] = max(skip_line, skip_label, use)
            take[k][j] = use >= max(skip_line, skip_label) and use > 0
        best[k][m] = best[k + 1][m]
    placed: dict[int, tuple[int, str]] = {}  # label -> (line, OCR'd label)
    k = j = 0
    while k < n and j < m:
        if take[k][j]:
            _, used, text = table[k][j]
            placed[k] = (j, text)
            k, j = k + 1, j + max(used, 1)
        elif best[k][j] == best[k][j + 1]:
            j += 1
        else:
            k += 1
    _fill_gaps(placed, n, region)
    order = sorted(placed)
    rows = [placed[k][0] for k in order]
    return Found([placed[k][1] for k in order], [_percents(region[placed[k][0]], placed[k][1]) for k in order],
                 rows[0] if rows else m, rows[-1] if rows else -1)


def _fill_gaps(placed: dict[int, tuple[int, str]], n: int, region: list[TextLine]) -> None:
    """A label OCR garbled beyond recognition, between two found ones with exactly one line
    holding a percentage between them, is that line's text (or, for a scale point read as a
    number, its first number); the corrector then compares it with the label."""
    for k in range(1, n - 1):
        if k in placed or k - 1 not in placed or k + 1 not in placed:
            continue
        between = [j for j in range(placed[k - 1][0] + 1, placed[k + 1][0])
                   if any(_is_percent(w) for w in region[j].words)]
        if len(between) == 1:
            j = between[0]
            words = _content(region[j]) or [w for w in region[j].words if not MARKER.match(w)][:1]
            placed[k] = (j, " ".join(words))


def _table_row(lines: list[TextLine], i: int, labels: list[str]) -> tuple[list[str], list[str], int] | None:
    """A battery item printed as a table row: its option labels (from the header over the
    percentage columns, each header word taken by the nearest column), its percentages, and the
    index of the header's first line. None when line i is not such a row."""
    row = lines[i]
    cells = [(lft, rgt, w) for lft, rgt, w in zip(row.lefts, row.rights, row.words) if _is_percent(w)]
    if len(cells) < len(labels) or len(labels) < 2:
        return None
    cells = cells[-len(labels):]
    centres = [(lft + rgt) / 2 for lft, rgt, _ in cells]
    bound = centres[0] - (centres[-1] - centres[0]) / (len(centres) - 1) / 2

    def mids(ln: TextLine) -> list[float]:
        return [(lft + rgt) / 2 for lft, rgt in zip(ln.lefts, ln.rights)]

    j = i - 1
    while j >= 0 and lines[j].page == row.page:  # the table's other rows (and their wrapped item text)
        ln = lines[j]
        right_values = sum(_is_percent(w) and m >= bound for w, m in zip(ln.words, mids(ln)))
        if right_values >= len(labels) or all(m < bound for m in mids(ln)):
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
            heads[min(range(len(centres)), key=lambda c: abs(centres[c] - m))].append(w)
    return [" ".join(h) for h in heads], [parse_percent(w) or "" for _, _, w in cells], j + 1


def _stem_text(lines: list[TextLine], start: int, stop: int, stem: str) -> tuple[str, int]:
    """The printed stem above a table: the lines before `stop` whose words read as the stem."""
    want = ocr_fold(stem)
    best = (10**9, stop, "")
    for i in range(max(start, stop - 12), stop):
        text = ""
        for e in range(i, stop):
            text = f"{text} {' '.join(_text_words(lines[e]))}".strip()
            stem_words = " ".join(_skip_code(text.split()))
            distance = Levenshtein.distance(ocr_fold(stem_words), want)
            if distance < best[0]:
                best = (distance, i, stem_words)
    return best[2], best[1]


def _drop_code(words: list[str], qcode: str, settings: ReaderSettings) -> list[str]:
    """The wording without the printed code in front (`[POL1DT)`, `J OBTRAIN.`, `OIFF2.`: OCR splits
    and misreads it): up to three words that spell nearly the code, the last closing it."""
    want = fold_code(qcode)
    for k in (3, 2, 1):
        if len(words) <= k:
            continue
        got = fold_code(printed_code("".join(words[:k])))
        closes = words[k - 1][-1:] in ".:])}" or not any(ch.islower() for ch in words[k - 1])
        ratio = fuzz.ratio(got, want) if got else 0.0
        if got == want or ratio >= settings.code_min_ratio or (closes and ratio >= CODE_DROP_MIN_RATIO):
            return words[k:]
    return words


def read_blocks(
    words: pd.DataFrame,
    hints: dict[str, Hint],
    toplines: dict[str, tuple[list[float], float]] | None = None,
    *,
    settings: ReaderSettings = ReaderSettings(),
) -> list[Block]:
    """One Block per codebook question found on the pages, in printed order."""
    if words.empty or not hints:
        return []
    dpi = int(words["dpi"].iloc[0])
    lines = read_lines(words, settings)
    tgts = targets(hints)
    anchors = choose_anchors(anchor_scores(lines, tgts, settings))
    placed = sorted((a[0], q, a[1]) for q, a in enumerate(anchors) if a is not None)
    blocks = []
    for n, (i, q, how) in enumerate(placed):
        t = tgts[q]
        stop = placed[n + 1][0] if n + 1 < len(placed) else len(lines)
        labels = list(t.hint.options) + list(t.hint.refusal_options)
        block = _read_block(lines, i, stop, t, labels, how, toplines or {}, settings)
        if block is not None:
            block.dpi = dpi
            blocks.append(block)
    return blocks


def _read_block(lines: list[TextLine], i: int, stop: int, t: Target, labels: list[str], how: str,
                toplines: dict[str, tuple[list[float], float]], settings: ReaderSettings) -> Block | None:
    anchor = lines[i]
    table = _table_row(lines, i, labels) if how == "item" and t.stem else None
    used = [anchor]
    if table is not None:
        heads, values, header_start = table
        stem, stem_at = _stem_text(lines, max(0, header_start - 12), header_start, t.stem or "")
        item_words = _content(anchor)
        for ln in lines[i + 1:stop]:
            if any(_is_percent(w) for w in ln.words) or not _content(ln) or ln.left <= anchor.left + 2 \
                    or ROUTING.match(ln.words[0]):
                break
            item_words += _content(ln)
            used.append(ln)
        wording = f"{stem} {' '.join(item_words)}".strip()
        options, percents = heads, values
        routing = _routing(lines, stem_at)
    else:
        region = lines[i + 1:stop]
        found = find_options(labels, region, settings)
        body = [ln for ln in region[:found.first] if not _is_table_header(ln)]
        first_words = _drop_code(_text_words(anchor), t.qcode, settings)
        wording = " ".join(first_words + [w for ln in body for w in _text_words(ln)])
        used += region[:found.last + 1]
        expected = None
        if t.qcode in toplines:
            probs, refusal = toplines[t.qcode]
            expected = expected_percents(probs, refusal) + [100.0 * refusal] * len(t.hint.refusal_options)
        column = _column_choice(found.percents, expected)
        options = found.options
        percents = [p[column] if column < len(p) else None for p in found.percents]
        routing = _routing(lines, i)
    if not options and how != "item" and t.item:
        return _read_table_item_below(lines, i, stop, t, labels, toplines, settings)
    if not options:
        return None
    n_sub = len(t.hint.options)
    substantive, refusal = options[:n_sub], options[n_sub:]
    confs = [c for ln in used for c in ln.confs]
    on_page = [ln for ln in used if ln.page == anchor.page]
    return Block(
        qcode=t.qcode, routing=routing, wording=" ".join(wording.split()),
        options=[" ".join(o.split()) for o in substantive], percents=list(percents[:n_sub]),
        refusal_options=[" ".join(o.split()) for o in refusal], refusal_percents=list(percents[n_sub:]),
        page=anchor.page,
        bbox=[min(ln.left for ln in on_page), min(ln.top for ln in on_page),
              max(ln.right for ln in on_page), max(ln.bottom for ln in on_page)],
        confidence=round(sum(confs) / len(confs), 2) if confs else 0.0,
        min_confidence=min(confs) if confs else 0.0,
        ocr_text="\n".join(ln.text for ln in used),
    )


def _read_table_item_below(lines: list[TextLine], i: int, stop: int, t: Target, labels: list[str],
                           toplines: dict[str, tuple[list[float], float]], settings: ReaderSettings) -> Block | None:
    """A battery item anchored on the stem above its table (the stem and the first item read like
    the whole wording): its row is further down, the one whose text reads as the item."""
    want = ocr_fold(t.item or "")
    rows = [j for j in range(i + 1, stop) if _table_row(lines, j, labels) is not None
            and fuzz.ratio(ocr_fold(" ".join(_content(lines[j]))), want) >= settings.option_min_ratio]
    if not rows:
        return None
    j = max(rows, key=lambda r: fuzz.ratio(ocr_fold(" ".join(_content(lines[r]))), want))
    return _read_block(lines, j, stop, t, labels, "item", toplines, settings)


def _routing(lines: list[TextLine], i: int) -> str | None:
    """The routing line (`ASK ALL:`) just above line i, if there is one."""
    for ln in lines[max(0, i - 2):i][::-1]:
        routed = routing_of(ln.text)
        if routed:
            return routed
    return None
