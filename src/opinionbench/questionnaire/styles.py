"""Questionnaire layouts other than our own topline, so the reader is tested on layouts it was not written for.

Real questionnaires differ from one survey house and year to the next: codes printed as `Q4.`,
`[CODE]`, on a line of their own or not at all, options lettered, numbered, bulleted or boxed,
percentages left or right of the label, in none, one or several trend columns, batteries printed
as a matrix, as a stem with lettered items or as full questions, instructions and routing lines,
one or two columns per page, questions split by a page break, running headers, footers and page
numbers, in different fonts. Each `Style` switches these on or off; `STYLES` names the six fixed
ones the tests and `benchmarks/ocr_accuracy.py` render (`topline` is `render.render_pdf`'s own
layout), and `random_style.draw_style(seed)` draws every dimension independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FONT = "Helvetica"
BOLD_OF = {"Helvetica": "Helvetica-Bold", "Times-Roman": "Times-Bold", "Courier": "Courier-Bold"}


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


# `period` `CODE.` / `bracketed` `[CODE]` / `bare` `CODE` in a margin column beside the wording;
# `numbered` `Q7.` there (no variable name); `own_line` the code alone, wording indented below;
# `inline` `[CODE] wording` run together; `after_number` `7. CODE: wording`; `absent` neither
CodeForm = Literal["period", "bracketed", "bare", "numbered", "own_line", "inline", "after_number", "absent"]
Marker = Literal["none", "letter", "number", "bullet", "checkbox"]
Battery = Literal["full", "table", "stem_items"]


@dataclass(frozen=True)
class Style:
    name: str
    code: CodeForm = "period"
    marker: Marker = "none"  # option markers: none | `a.` | `1.` | `•` | a drawn box
    percent_side: Literal["left", "right"] = "left"
    trend_columns: int = 1  # percentage columns, one per survey date (the first is this wave); 0: none
    trend_header: Literal["date", "current_previous"] = "date"  # heads of several columns
    matrix: bool = False  # batteries (items sharing a stem and options) as one table
    battery: Battery | None = None  # overrides `matrix`: full | table | stem_items
    columns: int = 1  # text columns per page
    split: bool = False  # a question may break across a column or page
    running_header: bool = False  # a header line on every page and the page number at its top right
    running_footer: bool = False  # a footer line on every page (beside a page number when shown)
    page_numbers: bool = True
    instructions: bool = False  # routing `ASK IF ...`, `[RANDOMIZE ...]`, `[READ]`, `(VOL.)` lines and marks
    routing: bool = True  # print the routing line (`ASK ALL:`) above each question
    font: str = FONT
    font_size: float = 10.5
    leading: float = 14.0

    @property
    def battery_layout(self) -> Battery:
        return self.battery or ("table" if self.matrix else "full")

    @property
    def bold(self) -> str:
        return BOLD_OF.get(self.font, self.font)


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
RANDOM = "random"  # the style family drawn from a seed (`random_style.draw_style`)


def style_named(name: str) -> Style:
    if name not in STYLES:
        raise ValueError(f"questionnaire style {name!r} is unknown; known: {', '.join(STYLES)}, {RANDOM}")
    return STYLES[name]
