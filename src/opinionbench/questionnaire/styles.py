"""Questionnaire layouts other than our own topline, so the reader is tested on layouts it was not written for.

Real questionnaires differ from one survey house and year to the next: codes printed as `Q4.`,
`[CODE]` or not at all, options lettered or numbered, percentages left or right of the label or
in several trend columns (one per survey date), batteries printed as a matrix (a stem, items as
rows, options as columns), two columns per page, questions split by a page break, running
headers and page numbers. Each `Style` switches these on or off; `STYLES` names the ones the
tests and `benchmarks/ocr_accuracy.py` render (`topline` is `render.render_pdf`'s own layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FONT = "Helvetica"

@dataclass(frozen=True)
class RenderQuestion:
    qcode: str
    routing: str
    wording: str
    options: list[str]
    percents: list[str]  # printed topline values, aligned with options ("12", "<1")
    refusal_label: str | None = None
    refusal_percent: str | None = None


def wrap_text(text: str, width: float, size: float, font: str = FONT) -> list[str]:
    """Words filled into lines no wider than `width` points (reportlab's font metrics)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and stringWidth(candidate, font, size) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines or [""]


CodeForm = Literal["period", "bracketed", "bare", "numbered"]
Marker = Literal["none", "letter", "number"]


@dataclass(frozen=True)
class Style:
    name: str
    code: CodeForm = "period"  # `CODE.` | `[CODE]` | `CODE` | `Q7.` (the variable name not printed at all)
    marker: Marker = "none"  # option markers: none | `a.` | `1.`
    percent_side: Literal["left", "right"] = "left"
    trend_columns: int = 1  # percentage columns, one per survey date (the first is this wave)
    matrix: bool = False  # batteries (items sharing a stem and options) as one table
    columns: int = 1  # text columns per page
    split: bool = False  # a question may break across a column or page
    running_header: bool = False  # a header line on every page and the page number at its top right
    font_size: float = 10.5
    leading: float = 14.0


STYLES: dict[str, Style] = {
    "topline": Style("topline"),
    "bracketed": Style("bracketed", code="bracketed", marker="letter", percent_side="right", split=True,
                       running_header=True),
    "numbered": Style("numbered", code="numbered", marker="number", percent_side="right", running_header=True),
    "trend": Style("trend", code="bare", trend_columns=3, split=True, running_header=True),
    "matrix": Style("matrix", code="period", matrix=True, running_header=True),
    "two_column": Style("two_column", code="period", columns=2, split=True, running_header=True, font_size=9.5,
                        leading=12.5),
}


def style_named(name: str) -> Style:
    if name not in STYLES:
        raise ValueError(f"questionnaire style {name!r} is unknown; known: {', '.join(STYLES)}")
    return STYLES[name]
