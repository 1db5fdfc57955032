"""Draw a questionnaire in one of the `styles.STYLES` layouts (every style but `topline`).

The page is a flow of rows poured into frames (one or two columns per page): a question's rows
stay together unless the style lets it split, in which case only its code line is kept with the
line after it. Batteries become one table when the style asks for a matrix. Everything here is
the writer's business; the reader (`reader.py`) knows none of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from opinionbench.io import atomic_path
from opinionbench.questionnaire.batteries import split_stem
from opinionbench.questionnaire.styles import RenderQuestion, Style, wrap_text

FONT, BOLD = "Helvetica", "Helvetica-Bold"
PAGE_W, PAGE_H, MARGIN, GUTTER = 612.0, 792.0, 54.0, 24.0
MATRIX_MAX_COLUMNS = 6


@dataclass
class Cell:
    x: float
    text: str
    font: str = FONT
    align: str = "left"  # left | right | centre
    size: float | None = None


@dataclass
class Row:
    cells: list[Cell] = field(default_factory=list)
    gap: float = 0.0  # extra space below the row, in leadings


@dataclass
class Unit:
    """Rows drawn together: the whole question, or (when splitting is allowed) a few lines."""

    rows: list[Row]


def _width(text: str, size: float, font: str = FONT) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return stringWidth(text, font, size)


def battery_groups(questions: list[RenderQuestion]) -> list[list[int]]:
    """Consecutive questions with the same options and a shared stem, as index groups (singletons too)."""
    groups: list[list[int]] = []
    for i, q in enumerate(questions):
        if groups:
            last = [questions[j] for j in groups[-1]]
            same = (q.options == last[0].options and q.refusal_label == last[0].refusal_label
                    and len(q.options) + bool(q.refusal_label) <= MATRIX_MAX_COLUMNS)
            if same and split_stem([x.wording for x in last] + [q.wording]):
                groups[-1].append(i)
                continue
        groups.append([i])
    return groups


def _trend_values(percent: str, rng: np.random.Generator, columns: int) -> list[str]:
    """Earlier surveys' values beside this wave's (made up: only the first column is checked)."""
    if columns == 1:
        return [percent]
    base = 0 if percent == "<1" else int(percent)
    return [percent] + [str(max(0, base + int(rng.integers(-6, 7)))) for _ in range(columns - 1)]


def _trend_dates(start: str | None, columns: int) -> list[str]:
    try:
        first = dt.date.fromisoformat(str(start)[:10])
    except ValueError:
        first = dt.date(2020, 1, 1)
    out = []
    for k in range(columns):
        months = first.year * 12 + first.month - 1 - 7 * k
        out.append(dt.date(months // 12, months % 12 + 1, 1).strftime("%b %Y"))
    return out


def _marker(style: Style, k: int) -> str:
    return {"none": "", "letter": f"{chr(ord('a') + k)}.", "number": f"{k + 1}."}[style.marker]


def _common_code(codes: list[str]) -> str:
    prefix = codes[0]
    for c in codes[1:]:
        while not c.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix.rstrip("_")
    return prefix if len(prefix) >= 3 else codes[0]


class Composer:
    """Turns questions into units of rows for one frame width."""

    def __init__(self, style: Style, width: float, dates: tuple[str | None, str | None], seed: int) -> None:
        self.style, self.width = style, width
        self.size, self.code_w = style.font_size, (110.0 if width > 300 else 72.0)
        self.dates = _trend_dates(dates[0], style.trend_columns)
        self.rng = np.random.default_rng(seed)
        self.number = 0

    def _code_text(self, qcode: str) -> str:
        self.number += 1
        return {"period": f"{qcode}.", "bracketed": f"[{qcode}]", "bare": qcode, "numbered": f"Q{self.number}."}[
            self.style.code]

    def _stem_rows(self, routing: str, code_text: str, wording: str) -> list[Row]:
        size = self.size
        first_x = max(self.code_w, _width(code_text, size, BOLD) + 8)
        lines = wrap_text(wording, self.width - first_x, size)
        rows = [Row([Cell(0, f"{routing.rstrip(':')}:")]), Row([Cell(0, code_text, BOLD), Cell(first_x, lines[0])])]
        for extra in wrap_text(" ".join(lines[1:]), self.width - self.code_w, size) if len(lines) > 1 else []:
            rows.append(Row([Cell(self.code_w, extra)]))
        rows[-1].gap = 0.4
        return rows

    def question(self, q: RenderQuestion) -> list[Unit]:
        style, size = self.style, self.size
        rows = self._stem_rows(q.routing, self._code_text(q.qcode), q.wording)
        labels = list(zip(q.percents, q.options))
        if q.refusal_label:
            labels.append((q.refusal_percent or "0", q.refusal_label))
        cols = style.trend_columns
        if style.percent_side == "left":
            step = 34.0 if cols > 1 else 0.0
            first_edge = self.code_w + (24.0 if cols > 1 else 28.0)
            edges = [first_edge + k * step for k in range(cols)]
            label_x = edges[-1] + 12.0
            if cols > 1:
                rows.append(Row([Cell(e, d, align="right", size=7.0) for e, d in zip(edges, self.dates)]))
        else:
            edges = [self.width - k * 34.0 for k in range(cols)][::-1]
            label_x = self.code_w + (18.0 if style.marker != "none" else 0.0)
        label_right = (edges[0] - 30.0) if style.percent_side == "right" else self.width
        for k, (pct, label) in enumerate(labels):
            values = _trend_values(pct, self.rng, cols)
            lines = wrap_text(label, label_right - label_x, size)
            first = [Cell(label_x, lines[0])]
            if style.marker != "none":
                first.insert(0, Cell(self.code_w, _marker(style, k)))
            first += [Cell(e, v, align="right") for e, v in zip(edges, values)]
            rows.append(Row(first))
            rows += [Row([Cell(label_x, extra)]) for extra in lines[1:]]
        rows[-1].gap = 1.0
        return self._units(rows)

    def battery(self, qs: list[RenderQuestion]) -> list[Unit]:
        """A stem, a header row of option labels and one row per item with its percentages."""
        size = self.size
        stem, items = split_stem([q.wording for q in qs])  # type: ignore[misc]
        rows = self._stem_rows(qs[0].routing, self._code_text(_common_code([q.qcode for q in qs])), stem)
        labels = list(qs[0].options) + ([qs[0].refusal_label] if qs[0].refusal_label else [])
        item_w = self.width * 0.42
        col_w = (self.width - item_w) / len(labels)
        centres = [item_w + col_w * (k + 0.5) for k in range(len(labels))]
        wrapped = [wrap_text(label, col_w - 6, size - 1.5) for label in labels]
        for line in range(max(len(w) for w in wrapped)):
            rows.append(Row([Cell(c, w[line], align="centre", size=size - 1.5)
                             for c, w in zip(centres, wrapped) if line < len(w)]))
        rows[-1].gap = 0.3
        for k, (q, item) in enumerate(zip(qs, items)):
            values = list(q.percents) + ([q.refusal_percent or "0"] if q.refusal_label else [])
            lines = wrap_text(item, item_w - 22, size)
            rows.append(Row([Cell(0, f"{chr(ord('a') + k)}."), Cell(18, lines[0])]
                            + [Cell(c + 8, v, align="right") for c, v in zip(centres, values)]))
            rows += [Row([Cell(18, extra)]) for extra in lines[1:]]
        rows[-1].gap = 1.0
        return self._units(rows)

    def _units(self, rows: list[Row]) -> list[Unit]:
        if not self.style.split:
            return [Unit(rows)]
        return [Unit(rows[:3])] + [Unit([r]) for r in rows[3:]]


def render_styled_pdf(
    questions: list[RenderQuestion],
    path: Path,
    style: Style,
    *,
    wave: str,
    title: str | None = None,
    dates: tuple[str | None, str | None] = (None, None),
    n: int | None = None,
    seed: int = 0,
) -> int:
    """Write the born-digital questionnaire in `style`; returns the number of pages."""
    from reportlab.pdfgen import canvas

    path = Path(path)
    tmp = atomic_path(path)
    c = canvas.Canvas(str(tmp), pagesize=(PAGE_W, PAGE_H), invariant=1)
    width = (PAGE_W - 2 * MARGIN - GUTTER * (style.columns - 1)) / style.columns
    lead = style.leading
    composer = Composer(style, width, dates, seed)
    units: list[Unit] = []
    for group in (battery_groups(questions) if style.matrix else [[i] for i in range(len(questions))]):
        qs = [questions[i] for i in group]
        units += composer.battery(qs) if len(qs) > 1 else composer.question(qs[0])

    page, frame = 1, 0
    top = PAGE_H - MARGIN - (2 * lead if style.running_header else 0)

    def start_page() -> float:
        if style.running_header:
            c.setFont(FONT, 8)
            c.drawString(MARGIN, PAGE_H - MARGIN + 4, f"PEW RESEARCH CENTER  AMERICAN TRENDS PANEL WAVE {wave.lstrip('W')}")
            c.drawRightString(PAGE_W - MARGIN, PAGE_H - MARGIN + 4, str(page))
        return top

    def end_page() -> None:
        if not style.running_header:
            c.setFont(FONT, 8)
            c.drawCentredString(PAGE_W / 2, MARGIN / 2, f"Page {page}")
        c.showPage()

    y = start_page()
    c.setFont(BOLD, 13)
    for text in ("PEW RESEARCH CENTER", f"AMERICAN TRENDS PANEL WAVE {wave.lstrip('W')}"):
        c.drawString(MARGIN, y, text)
        y -= 18
    c.setFont(FONT, style.font_size)
    for text in ([f"TOPLINE: {title}"[:100]] if title else []) + (
            [f"Fielded {dates[0] or '?'} to {dates[1] or '?'}"] if any(dates) else []) + ([f"N={n:,}"] if n else []):
        c.drawString(MARGIN, y, text)
        y -= lead
    y -= lead
    frame_top = y  # the first page's frames start below the title
    for unit in units:
        height = sum(lead * (1 + r.gap) for r in unit.rows)
        if y - height < MARGIN and y < frame_top - 1:
            frame += 1
            if frame == style.columns:
                end_page()
                page, frame = page + 1, 0
                frame_top = start_page()
            y = frame_top
        x0 = MARGIN + frame * (width + GUTTER)
        for row in unit.rows:
            for cell in row.cells:
                size = cell.size or style.font_size
                c.setFont(cell.font, size)
                draw = {"left": c.drawString, "right": c.drawRightString, "centre": c.drawCentredString}[cell.align]
                draw(x0 + cell.x, y, cell.text)
            y -= lead * (1 + row.gap)
    end_page()
    c.save()
    tmp.replace(path)
    return page
