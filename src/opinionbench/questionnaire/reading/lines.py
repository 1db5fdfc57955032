"""OCR words → text lines in reading order, and what a line's words are: markers, numbering,
percentages, table heads. Running headers, footers and page numbers are dropped here."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from rapidfuzz import fuzz

from opinionbench.questionnaire.reading.settings import ReaderSettings
from opinionbench.questionnaire.segment import parse_percent

MARKER = re.compile(r"^(\(?[a-zA-Z]{1,2}[.)]|\(?\d{1,2}[.)])$")  # `a.` `b)` `(c)` `1.` `12)`
# `Q7.` `Q.12` `Q3a:`, and as OCR reads them (`Q?7.`, `Ql11.`, `Qiz.`)
NUMBERING = re.compile(r"^[qQ]?Q\.?[?]?[\dOoIlizZsS|!]{1,4}[a-z]?[.:,]$|^Q\.?\d{1,3}[a-z]?[.:,]?$")
BULLET = re.compile(r"^[•*«»·o°e©®\u25a1\u2610\[\]|_-]{1,3}$")  # a bullet or check box as OCR reads it
PAGE_NUMBER = re.compile(r"^(page\s*)?[-–]?\s*\d{1,4}\s*[-–]?(\s*of\s*\d{1,4})?$", re.IGNORECASE)
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
    lines.sort(key=lambda ln: (ln.page, ln.column, ln.top))
    return drop_running_lines(lines, words, settings, expected)


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
    return bool(MARKER.match(word) or NUMBERING.match(word) or BULLET.match(word)
                or (is_percent(word) and any(ch.isdigit() or ch == "<" for ch in word)))


def text_words(ln: TextLine) -> list[str]:
    """The line's words without a leading marker or numbering, and without percentages at either end."""
    words = list(ln.words)
    while words and leading_noise(words[0]):
        words = words[1:]
    while words and is_percent(words[-1]):
        words = words[:-1]
    return words


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
