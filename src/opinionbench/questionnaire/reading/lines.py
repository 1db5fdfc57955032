"""OCR words → text lines in reading order, and what a line's words are: markers, numbering,
percentages, table heads. Running headers, footers and page numbers are dropped here."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from rapidfuzz import fuzz

from opinionbench.questionnaire.reading.settings import ReaderSettings
from opinionbench.questionnaire.segment import parse_percent

MARKER = re.compile(r"^(\(?[a-zA-Z]{1,2}[.)]|\(?[a-hj-zA-HJ-Z][,]|\(?\d{1,2}[.)])$")  # `a.` `b)` `(c)` `1.` `12)`, `b,`
# `Q7.` `Q.12` `Q3a:`, and as OCR reads them (`Q?7.`, `Ql11.`, `Qiz.`, `ql.`)
NUMBERING = re.compile(r"^[qQ]?[qQ]\.?[?]?[\dOoIlizZsS|!]{1,4}[a-z]?[.:,]$|^Q\.?\d{1,3}[a-z]?[.:,]?$"
                       r"|^Q[\dOoIlizZsS|!?]{0,3}\?[.:,]$")  # and with the number lost (`Q?.`, `Qs?.`)
BULLET = re.compile(r"^[•*«»·o°e©®\u25a1\u2610\[\]|_-]{1,3}$")  # a bullet or check box as OCR reads it
PAGE_NUMBER = re.compile(r"^(page\s*)?[-–]?\s*\d{1,4}\s*[-–]?(\s*of\s*\d{1,4})?$", re.IGNORECASE)
SPECK = re.compile(r"^[^\w\s]{1,3}$|^[^\w\s][.)]$")  # `_`, `:`, `‘`, `£.` (a marker OCR misread): no letters
SPECK_CHARS = 3  # a token this short that the codebook text lacks may be speckle OCR read as a word
LOOKALIKE_DIGITS = set("iIlL|oOsSzZ§$")  # what OCR reads for a digit
NUMBERISH = LOOKALIKE_DIGITS | set("0123456789?%<>")  # a percentage as OCR may read it (`$7`, `4?`, `§2`)
MONTH = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*[.,]?$", re.IGNORECASE)
YEAR = re.compile(r"^(19|20)\d\d[.,]?$")
REPEATED_MIN_RATIO = 85.0
EXPECTED_PREFIX = 30


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


def read_lines(words: pd.DataFrame, settings: ReaderSettings = ReaderSettings(),
               expected: list[str] | None = None) -> list[TextLine]:
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
    lines = rejoin_cut_tables(rejoin_cut_lines(split_merged_columns(lines, words)))
    lines.sort(key=lambda ln: (ln.page, ln.column, ln.top))
    return drop_running_lines(lines, words, settings, expected)


GUTTER_GAP_HEIGHTS = 2.5  # a gap between words this many word heights wide may be a gutter
MIN_RIGHT_PROSE_LINES = 8  # lines of prose right of the gutter: a second column, not a table's numbers
GUTTER_CROSSING_LINES, GUTTER_CROSSING_SHARE = 2, 0.1  # lines across a gutter: a title, not the body


def split_merged_columns(lines: list[TextLine], words: pd.DataFrame) -> list[TextLine]:
    """A two-column page OCR read as one (its lines run across the gutter): each line is cut at the
    gutter, a wide gap between words at the same place in the middle of the page on many lines, and
    the right-hand part read as a second column. Only where the right-hand parts hold prose."""
    widths = words.groupby("page")["page_width"].first().to_dict() if "page_width" in words else {}
    out: list[TextLine] = []
    for page in sorted({ln.page for ln in lines}):
        on_page = [ln for ln in lines if ln.page == page]
        width = widths.get(page, 0)
        if not width or any(ln.column for ln in on_page):
            out += on_page
            continue
        heights = sorted(ln.bottom - ln.top for ln in on_page)
        gap = GUTTER_GAP_HEIGHTS * heights[len(heights) // 2]
        gaps = [[(r, l) for r, l in zip(ln.rights, ln.lefts[1:]) if l - r >= gap] for ln in on_page]
        best, best_x = 0, None
        for x in range(int(0.3 * width), int(0.7 * width), 10):
            cover = [any(r < x < l for r, l in g) for g in gaps]
            covered = sum(cover)
            # lines that run on through x without a gap there: prose across the middle, no gutter
            crossing = sum(not c and ln.lefts[0] < x < ln.rights[-1] for c, ln in zip(cover, on_page))
            if covered > best and crossing <= max(GUTTER_CROSSING_LINES, GUTTER_CROSSING_SHARE * covered):
                best, best_x = covered, x
        if best_x is None:
            out += on_page
            continue
        parts = [(ln, [k for k, a in enumerate(ln.lefts) if a > best_x]) for ln in on_page]
        prose = sum(sum(sum(ch.isalpha() for ch in ln.words[k]) >= 3 for k in right) >= 1 for ln, right in parts)
        if prose < MIN_RIGHT_PROSE_LINES:
            out += on_page
            continue
        for ln, right in parts:
            if any(a <= best_x <= b for a, b in zip(ln.lefts, ln.rights)) or not right:
                out.append(ln)
                continue
            left = [k for k in range(len(ln.words)) if k not in right]
            for column, keep in ((0, left), (1, right)):
                if keep:
                    out.append(TextLine(page=ln.page, column=column, top=ln.top, bottom=ln.bottom,
                                        left=ln.lefts[keep[0]], right=ln.rights[keep[-1]],
                                        words=[ln.words[k] for k in keep], lefts=[ln.lefts[k] for k in keep],
                                        rights=[ln.rights[k] for k in keep], confs=ln.confs))
    return out


CUT_LINE_GAP_HEIGHTS = 0.6  # a word gap, not a gutter: two columns stand two ems or more apart
CUT_WORD_GAP_HEIGHTS = 0.15  # no gap at all: the cut went through a word (`OFFI` `CES`)


def rejoin_cut_lines(lines: list[TextLine]) -> list[TextLine]:
    """Lines OCR cut in two at a text-column boundary that is none (long lines of a one-column page
    running into what OCR took for a gutter): where (nearly) every line of a right-hand column is
    such a part, at the height of a left-hand line and starting a word gap after its end (or
    right at it: a word cut in two, glued again), each joins its line. A real second column has
    lines of its own, apart from the first by a gutter."""
    out: list[TextLine] = []
    for page in sorted({ln.page for ln in lines}):
        on_page = [ln for ln in lines if ln.page == page]
        partners = {id(ln): _cut_partner(ln, on_page) for ln in on_page if ln.column > 0}
        for column in sorted({ln.column for ln in on_page if ln.column > 0}):
            right = [ln for ln in on_page if ln.column == column]
            if sum(partners[id(ln)] is not None for ln in right) < CUT_LINE_SHARE * len(right):
                partners.update({id(ln): None for ln in right})
        for ln in on_page:
            o = partners.get(id(ln))
            if o is None:
                out.append(ln)
                continue
            if ln.left - o.right <= CUT_WORD_GAP_HEIGHTS * (ln.bottom - ln.top) and o.words[-1][-1:].isalpha() \
                    and ln.words[0][:1].isalpha():
                o.words = o.words[:-1] + [o.words[-1] + ln.words[0]] + ln.words[1:]
                o.lefts, o.rights = o.lefts + ln.lefts[1:], o.rights[:-1] + ln.rights
            else:
                o.words, o.lefts, o.rights = o.words + ln.words, o.lefts + ln.lefts, o.rights + ln.rights
            o.right, o.bottom, o.confs = max(o.right, ln.right), max(o.bottom, ln.bottom), o.confs + ln.confs
    return out


CUT_LINE_SHARE = 0.8  # of a right-hand column's lines that continue a left-hand line: no column of its own


def _cut_partner(ln: TextLine, on_page: list[TextLine]) -> TextLine | None:
    """The left-hand line that `ln` continues, if any: at its height, a word gap (or none) to its left."""
    height = ln.bottom - ln.top
    for o in on_page:
        if o.column < ln.column and o.words and ln.words \
                and min(ln.bottom, o.bottom) - max(ln.top, o.top) >= 0.5 * min(height, o.bottom - o.top) \
                and -CUT_WORD_GAP_HEIGHTS * height <= ln.left - o.right <= CUT_LINE_GAP_HEIGHTS * height:
            return o
    return None


CUT_TABLE_SHARE = 0.5  # of a right-hand "column"'s lines that hold numbers only


def rejoin_cut_tables(lines: list[TextLine]) -> list[TextLine]:
    """A page OCR split into two text columns where it is one column with a table whose number
    or check-box columns stood apart (most lines of the right-hand part are numbers or boxes only,
    `27 31 4`, `oO QO Oo`): each right-hand line joins the left-hand line at its height, so a row
    (and a stem cut in two with it) reads whole again."""
    out: list[TextLine] = []
    for page in sorted({ln.page for ln in lines}):
        on_page = [ln for ln in lines if ln.page == page]
        right = [ln for ln in on_page if ln.column > 0]
        numbers = [ln for ln in right if all(is_percent(w) or not any(ch.isalpha() for ch in w)
                                             or set(w) <= LOOKALIKE_DIGITS or _box_marks(w) for w in ln.words)]
        if not right or len(numbers) < CUT_TABLE_SHARE * len(right):
            out += on_page
            continue
        left = [ln for ln in on_page if ln.column == 0]
        for ln in right:
            overlap = [(min(ln.bottom, o.bottom) - max(ln.top, o.top), o) for o in left]
            best = max(overlap, key=lambda x: x[0], default=(0, None))
            if best[1] is not None and best[0] >= 0.5 * min(ln.bottom - ln.top, best[1].bottom - best[1].top):
                o = best[1]
                order = sorted(range(len(o.words) + len(ln.words)), key=lambda k: (o.lefts + ln.lefts)[k])
                merged = [(o.words + ln.words)[k] for k in order], [(o.lefts + ln.lefts)[k] for k in order], \
                    [(o.rights + ln.rights)[k] for k in order]
                o.words, o.lefts, o.rights = merged
                o.right, o.bottom, o.confs = max(o.right, ln.right), max(o.bottom, ln.bottom), o.confs + ln.confs
            else:
                ln.column = 0
                left.append(ln)
        out += left
    return out


BOX_CHARS = set("oOQD0aceCUil|()[]{}©®°@*")  # `oO`, `QO`, `a}`, `ia)`: a table's check boxes as OCR reads them


def _box_marks(word: str) -> bool:
    return len(word) <= 3 and set(word) <= BOX_CHARS


def drop_running_lines(lines: list[TextLine], words: pd.DataFrame, settings: ReaderSettings,
                       expected: list[str] | None = None) -> list[TextLine]:
    """Page numbers (and the digits of a header cut by a column split), and lines repeated in the
    top or bottom band of several pages (running headers) unless they begin like one of the
    `expected` texts (battery items sharing a stem open several pages alike)."""
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
    starts = [re.sub(r"[\W\d_]+", "", e.lower())[:EXPECTED_PREFIX] for e in expected or []]
    repeated = {k for k in repeated
                if not any(fuzz.ratio(k[:EXPECTED_PREFIX], s) >= REPEATED_MIN_RATIO for s in starts if s)
                and not any(s and s in k for s in starts)}
    return [ln for ln in lines
            if not (in_band(ln) and (PAGE_NUMBER.match(ln.text.strip()) or key(ln) in repeated or _page_number(ln)))
            and not (ln.top < heights[ln.page] * settings.band and not any(ch.isalpha() for ch in ln.text))]


def _page_number(ln: TextLine) -> bool:
    """A number with at most one word beside it (`p. 3`, `Page 3`, `- 3 -`)."""
    return any(ch.isdigit() for ch in ln.text) and sum(sum(ch.isalpha() for ch in w) >= 2 for w in ln.words) <= 1 \
        and len(ln.words) <= 4


def is_percent(token: str) -> bool:
    return parse_percent(token) is not None


def leading_noise(word: str) -> bool:
    """A marker, numbering, bullet or percentage in front of a line's text (not the word `I`, which
    OCR would also read as a percentage of 1)."""
    return bool(MARKER.match(word) or NUMBERING.match(word) or BULLET.match(word) or SPECK.match(word)
                or (is_percent(word) and any(ch.isdigit() or ch == "<" for ch in word)))


def unmarked_words(ln: TextLine) -> list[str]:
    """The line's words after its leading marker, numbering, bullet or percentage (`leading_noise`)."""
    words = list(ln.words)
    while words and leading_noise(words[0]):
        words = words[1:]
    return words


def text_words(ln: TextLine) -> list[str]:
    """The line's words without a leading marker or numbering, and without percentages at either end."""
    words = unmarked_words(ln)
    end = len(words)  # percentages at the end, with OCR's look-alikes among them (`65 31 3 i`)
    while end and (is_percent(words[end - 1]) or len(words[end - 1]) <= 3 and set(words[end - 1]) <= NUMBERISH
                   and (len(words[end - 1]) <= 2 or any(ch.isdigit() for ch in words[end - 1]))):
        end -= 1
    if not any(ch.isdigit() for w in words[end:] for ch in w):  # no number among them: `I` is a word
        end = len(words)
        while end and is_percent(words[end - 1]):
            end -= 1
    return words[:end]


def numeric(word: str) -> bool:
    """A number as OCR reads a table cell or two (`8&9`, `1856`): digits, and a letter at most."""
    return any(ch.isdigit() for ch in word) and sum(ch.isalpha() for ch in word) <= 1


def row_text_words(ln: TextLine, keep: frozenset[str] = frozenset()) -> list[str]:
    """`text_words`, and where the line holds several numbers (a table row whose item wraps: `You or
    your 6 5 8&9 1`), without them (but those in `keep`, a wording's own): what the line says."""
    words = text_words(ln)
    numbers = [w for w in words if numeric(w) and w.strip(".,;:?!()") not in keep]
    return [w for w in words if w not in numbers] if len(numbers) >= 2 else words


def content_words(ln: TextLine) -> list[str]:
    """The line's words without a leading marker or numbering, and without any percentages (option lines)."""
    return [w for w in text_words(ln) if not is_percent(w)]


def is_table_header(ln: TextLine) -> bool:
    """Column heads of survey dates (`Jul 2018 Jan 2018`, OCR'd as `Oec 2020` too) or of numbers: no prose."""
    years = sum(bool(YEAR.match(w)) for w in ln.words)
    short = all(YEAR.match(w) or MONTH.match(w) or is_percent(w) or len(w) <= 4 or not any(ch.isalpha() for ch in w)
                for w in ln.words)
    numbers = all(is_percent(w) or not any(ch.isalpha() for ch in w) for w in ln.words)
    return numbers or (short and years >= max(1, len(ln.words) // 3))


def line_pitch(lines: list[TextLine]) -> float:
    """The usual distance from one line's top to the next's in a text column (the leading): the
    median over neighbouring lines of one page and column, so a line OCR lost shows as a gap."""
    steps = sorted(b.top - a.top for a, b in zip(lines, lines[1:])
                   if a.page == b.page and a.column == b.column and b.top > a.top)
    return float(steps[len(steps) // 2]) if steps else 0.0
