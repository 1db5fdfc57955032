"""Draw a questionnaire in a `styles.Style` layout (every style but `topline`).

The page is a flow of rows poured into frames (one or two columns per page): a question's rows
stay together unless the style lets it split, in which case only its code line is kept with the
line after it. Batteries become one table or a stem with lettered items when the style asks.
Everything here is the writer's business; the reader (`reader.py`) knows none of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from opinionbench.io import atomic_path
from opinionbench.questionnaire.batteries import split_stem
from opinionbench.questionnaire.styles import RenderQuestion, Style, wrap_text

PAGE_W, PAGE_H, MARGIN, GUTTER = 612.0, 792.0, 54.0, 24.0
MATRIX_MAX_COLUMNS = 6
MARGIN_FORMS = ("period", "bracketed", "bare", "numbered")  # the code in a column left of the wording
ROUTINGS = ("ASK ALL", "ASK IF FORM 1 (XFORM=1)", "ASK FORM 2 RESPONDENTS", "ASK IF EMPLOYED (EMPLOY=1,2) [N=2,345]",
            "ASK ALL REGISTERED VOTERS")
INSTRUCTIONS = ("[RANDOMIZE ITEMS]", "[READ LIST]", "[RANDOMIZE OPTIONS 1-2 WITH 3 ALWAYS LAST]",
                "INTERVIEWER: DO NOT READ CATEGORIES", "[SHOW RESPONSE OPTIONS IN REVERSE ORDER FOR RANDOM HALF]")
HEADERS = ("PEW RESEARCH CENTER AMERICAN TRENDS PANEL WAVE {w}", "ATP W{w} TOPLINE", "American Trends Panel Wave {w}")
FOOTERS = ("PEW RESEARCH CENTER", "Final topline", "American Trends Panel")
PAGE_FORMS = ("Page {p}", "{p}", "- {p} -", "p. {p}")


@dataclass
class Cell:
    x: float
    text: str
    font: str | None = None  # the style's font when None
    align: str = "left"  # left | right | centre
    size: float | None = None
    box: bool = False  # a drawn check box instead of text


@dataclass
class Row:
    cells: list[Cell] = field(default_factory=list)
    gap: float = 0.0  # extra space below the row, in leadings


@dataclass
class Unit:
    """Rows drawn together: the whole question, or (when splitting is allowed) a few lines."""

    rows: list[Row]


def _width(text: str, size: float, font: str) -> float:
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
    if columns == 0:
        return []
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
    return {"none": "", "letter": f"{chr(ord('a') + k)}.", "number": f"{k + 1}.", "bullet": "\u2022",
            "checkbox": ""}[style.marker]


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
        self.size, self.font, self.bold = style.font_size, style.font, style.bold
        self.code_w = (110.0 if width > 300 else 72.0) if style.code in MARGIN_FORMS else 18.0
        cols = style.trend_columns
        self.heads = (_trend_dates(dates[0], cols) if style.trend_header == "date"
                      else ["Current", "Previous", "Earlier"][:cols]) if cols > 1 else []
        self.rng = np.random.default_rng(seed)
        self.number = 0

    def _wrap(self, text: str, width: float, size: float | None = None) -> list[str]:
        return wrap_text(text, width, size or self.size, self.font)

    def _routing_rows(self, routing: str) -> list[Row]:
        style = self.style
        if not style.routing and not style.instructions:
            return []
        if style.instructions and self.rng.random() < 0.6:
            routing = ROUTINGS[int(self.rng.integers(len(ROUTINGS)))]
        return [Row([Cell(0, line)]) for line in self._wrap(f"{routing.rstrip(':')}:", self.width)]

    def _stem_rows(self, routing: str, qcode: str, wording: str) -> list[Row]:
        """Routing, code and wording in the style's code form."""
        style, size = self.style, self.size
        self.number += 1
        rows = self._routing_rows(routing)
        form = style.code
        if form in MARGIN_FORMS:
            code_text = {"period": f"{qcode}.", "bracketed": f"[{qcode}]", "bare": qcode,
                         "numbered": f"Q{self.number}."}[form]
            first_x = max(self.code_w, _width(code_text, size, self.bold) + 8)
            lines = self._wrap(wording, self.width - first_x)
            rows.append(Row([Cell(0, code_text, self.bold), Cell(first_x, lines[0])]))
            rest = self._wrap(" ".join(lines[1:]), self.width - self.code_w) if len(lines) > 1 else []
            rows += [Row([Cell(self.code_w, extra)]) for extra in rest]
        elif form == "own_line":
            rows.append(Row([Cell(0, f"{qcode}", self.bold)]))
            rows += [Row([Cell(self.code_w, line)]) for line in self._wrap(wording, self.width - self.code_w)]
        else:
            prefix = {"inline": f"[{qcode}]", "after_number": f"{self.number}. {qcode}:", "absent": ""}[form]
            lines = self._wrap(f"{prefix} {wording}".strip(), self.width)
            rows += [Row([Cell(0, line)]) for line in lines]
        if style.instructions and self.rng.random() < 0.35:
            text = INSTRUCTIONS[int(self.rng.integers(len(INSTRUCTIONS)))]
            rows += [Row([Cell(self.code_w, line)]) for line in self._wrap(text, self.width - self.code_w)]
        rows[-1].gap = 0.4
        return rows

    def _refusal(self, label: str) -> str:
        return f"{label} (VOL.)" if self.style.instructions else label

    def question(self, q: RenderQuestion, stem_rows: list[Row] | None = None) -> list[Unit]:
        rows = stem_rows if stem_rows is not None else self._stem_rows(q.routing, q.qcode, q.wording)
        rows += self._option_rows(q, self.code_w)
        rows[-1].gap = 1.0
        return self._units(rows)

    def _option_rows(self, q: RenderQuestion, indent: float) -> list[Row]:
        style = self.style
        labels = list(zip(q.percents, q.options))
        if q.refusal_label:
            labels.append((q.refusal_percent or "0", self._refusal(q.refusal_label)))
        cols = style.trend_columns
        marker_w = 18.0 if style.marker != "none" else 0.0
        rows: list[Row] = []
        if style.percent_side == "left":
            step = 34.0 if cols > 1 else 0.0
            edges = [indent + (24.0 if cols > 1 else 28.0) + k * step for k in range(cols)]
            label_x = (edges[-1] + 12.0 if cols else indent) + marker_w
            marker_x = label_x - marker_w
            label_right = self.width
        else:
            edges = [self.width - k * 34.0 for k in range(cols)][::-1]
            label_x = indent + marker_w
            marker_x = indent
            label_right = (edges[0] - 30.0) if cols else self.width
        if self.heads:
            rows.append(Row([Cell(e, d, align="right", size=7.0) for e, d in zip(edges, self.heads)]))
        for k, (pct, label) in enumerate(labels):
            values = _trend_values(pct, self.rng, cols)
            lines = self._wrap(label, label_right - label_x)
            first = [Cell(label_x, lines[0])]
            if style.marker == "checkbox":
                first.insert(0, Cell(marker_x + 2, "", box=True))
            elif style.marker != "none":
                first.insert(0, Cell(marker_x, _marker(style, k)))
            first += [Cell(e, v, align="right") for e, v in zip(edges, values)]
            rows.append(Row(first))
            rows += [Row([Cell(label_x, extra)]) for extra in lines[1:]]
        return rows

    def battery(self, qs: list[RenderQuestion]) -> list[Unit]:
        if self.style.battery_layout == "stem_items" or not self._table_fits(qs[0]):
            return self._stem_items(qs)  # column heads under 7 points are no table anyone prints
        return self._table(qs)

    def _table_fits(self, q: RenderQuestion) -> bool:
        labels = list(q.options) + ([self._refusal(q.refusal_label)] if q.refusal_label else [])
        col_w = (self.width - self.width * 0.42) / len(labels)
        return max(_width(w, 7.0, self.font) for label in labels for w in label.split()) <= col_w - 4

    def _stem_items(self, qs: list[RenderQuestion]) -> list[Unit]:
        """The stem once, then each item lettered (with its own code) and its options."""
        stem, items = split_stem([q.wording for q in qs])  # type: ignore[misc]
        rows = self._stem_rows(qs[0].routing, _common_code([q.qcode for q in qs]), stem)
        form = self.style.code
        for k, (q, item) in enumerate(zip(qs, items)):
            code = {"period": f"{q.qcode}.", "bracketed": f"[{q.qcode}]", "bare": q.qcode, "own_line": q.qcode,
                    "inline": f"[{q.qcode}]", "after_number": f"{q.qcode}:"}.get(form, "")
            text = f"{chr(ord('a') + k)}. {code} {item}".replace("  ", " ")
            lines = self._wrap(text, self.width - self.code_w - 14)
            rows.append(Row([Cell(self.code_w, lines[0])]))
            rows += [Row([Cell(self.code_w + 14, extra)]) for extra in lines[1:]]
            rows += self._option_rows(q, self.code_w + 14)
            rows[-1].gap = 0.5
        rows[-1].gap = 1.0
        return self._units(rows)

    def _table(self, qs: list[RenderQuestion]) -> list[Unit]:
        """A stem, a header row of option labels and one row per item with its percentages."""
        size = self.size
        stem, items = split_stem([q.wording for q in qs])  # type: ignore[misc]
        rows = self._stem_rows(qs[0].routing, _common_code([q.qcode for q in qs]), stem)
        labels = list(qs[0].options) + ([self._refusal(qs[0].refusal_label)] if qs[0].refusal_label else [])
        item_w = self.width * 0.42
        col_w = (self.width - item_w) / len(labels)
        centres = [item_w + col_w * (k + 0.5) for k in range(len(labels))]
        head = size - 1.5  # small enough that the longest word of a label fits its column
        while head > 5.0 and max(_width(w, head, self.font) for label in labels for w in label.split()) > col_w - 4:
            head -= 0.5
        wrapped = [self._wrap(label, col_w - 4, head) for label in labels]
        for line in range(max(len(w) for w in wrapped)):
            rows.append(Row([Cell(c, w[line], align="centre", size=head)
                             for c, w in zip(centres, wrapped) if line < len(w)]))
        rows[-1].gap = 0.3
        for k, (q, item) in enumerate(zip(qs, items)):
            values = list(q.percents) + ([q.refusal_percent or "0"] if q.refusal_label else [])
            lines = self._wrap(item, item_w - 22)
            cells = [Cell(0, f"{chr(ord('a') + k)}."), Cell(18, lines[0])]
            if self.style.trend_columns:
                cells += [Cell(c + 8, v, align="right") for c, v in zip(centres, values)]
            elif self.style.marker == "checkbox":
                cells += [Cell(c - 4, "", box=True) for c in centres]
            rows.append(Row(cells))
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
    keywords: str = "",
) -> int:
    """Write the born-digital questionnaire in `style`; returns the number of pages.
    `keywords` goes into the PDF's metadata (a random layout's drawn dimensions)."""
    from reportlab.pdfgen import canvas

    path = Path(path)
    tmp = atomic_path(path)
    c = canvas.Canvas(str(tmp), pagesize=(PAGE_W, PAGE_H), invariant=1)
    if keywords:
        c.setKeywords(keywords)
    width = (PAGE_W - 2 * MARGIN - GUTTER * (style.columns - 1)) / style.columns
    lead = style.leading
    composer = Composer(style, width, dates, seed)
    pick = np.random.default_rng(seed + 1)
    header = HEADERS[int(pick.integers(len(HEADERS)))].format(w=wave.lstrip("W")) if style.name == "random" \
        else HEADERS[0].format(w=wave.lstrip("W"))
    footer = FOOTERS[int(pick.integers(len(FOOTERS)))]
    page_form = PAGE_FORMS[int(pick.integers(len(PAGE_FORMS)))] if style.name == "random" else "{p}"
    units: list[Unit] = []
    grouped = style.battery_layout != "full"
    for group in (battery_groups(questions) if grouped else [[i] for i in range(len(questions))]):
        qs = [questions[i] for i in group]
        units += composer.battery(qs) if len(qs) > 1 else composer.question(qs[0])

    page, frame = 1, 0
    top = PAGE_H - MARGIN - (2 * lead if style.running_header else 0)

    def start_page() -> float:
        if style.running_header:
            c.setFont(style.font, 8)
            c.drawString(MARGIN, PAGE_H - MARGIN + 4, header)
            if style.page_numbers:
                c.drawRightString(PAGE_W - MARGIN, PAGE_H - MARGIN + 4, page_form.format(p=page, n="?"))
        return top

    def end_page() -> None:
        c.setFont(style.font, 8)
        if style.running_footer:
            c.drawString(MARGIN, MARGIN / 2, footer)
        if style.page_numbers and not style.running_header:
            (c.drawRightString if style.running_footer else c.drawCentredString)(
                PAGE_W - MARGIN if style.running_footer else PAGE_W / 2, MARGIN / 2, f"Page {page}"
                if style.name != "random" else page_form.format(p=page, n="?"))
        c.showPage()

    y = start_page()
    c.setFont(style.bold, 13)
    for text in ("PEW RESEARCH CENTER", f"AMERICAN TRENDS PANEL WAVE {wave.lstrip('W')}"):
        c.drawString(MARGIN, y, text)
        y -= 18
    c.setFont(style.font, style.font_size)
    for text in ([f"TOPLINE: {title}"[:100]] if title else []) + (
            [f"Fielded {dates[0] or '?'} to {dates[1] or '?'}"] if any(dates) else []) + ([f"N={n:,}"] if n else []):
        c.drawString(MARGIN, y, text)
        y -= lead
    y -= lead
    frame_top = y  # the first page's frames start below the title
    room = top - MARGIN  # a unit taller than a whole frame is broken after its first lines
    units = [part for unit in units for part in (
        [unit] if sum(lead * (1 + r.gap) for r in unit.rows) <= room
        else [Unit(unit.rows[:3])] + [Unit([r]) for r in unit.rows[3:]])]
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
                if cell.box:
                    c.rect(x0 + cell.x, y - 1, size * 0.7, size * 0.7, stroke=1, fill=0)
                    continue
                c.setFont(cell.font or style.font, size)
                draw = {"left": c.drawString, "right": c.drawRightString, "centre": c.drawCentredString}[cell.align]
                draw(x0 + cell.x, y, cell.text)
            y -= lead * (1 + row.gap)
    end_page()
    c.save()
    tmp.replace(path)
    return page
