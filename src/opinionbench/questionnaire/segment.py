"""OCR words → question blocks (code, routing, wording, options, topline percentages, box).

The segmenter reads the topline layout of `render.Layout` by columns, measured from each
page's own left edge (so a slightly shifted or rotated scan still segments): routing lines
(`ASK ...:`) and question codes (`CODE.`) sit at the margin, the wording in a hanging indent,
and option lines start with a percentage in a column right of the wording indent. Anything
before the first routing/code line of a page (header) and `Page N` footers is not a question.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field

import pandas as pd
from rapidfuzz import fuzz

from opinionbench.questionnaire.ocr import PageWarning
from opinionbench.questionnaire.render import LAYOUT, Layout
from opinionbench.survey.codebook import is_refusal

CODE_TOKEN = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)[.,]$")
ROUTING = re.compile(r"^ASK\b", re.IGNORECASE)
FOOTER = re.compile(r"^P\s?a\s?g\s?e\s*\S{1,4}$", re.IGNORECASE)
PERCENT_TOKEN = re.compile(r"^(<\s?[1lI|]|[0-9OoIl|]{1,3})[°*%'.,]?$")
REFUSAL_WORDS = ("Refused", "Don't know", "No answer", "Don't know/Refused")


@dataclass
class Line:
    page: int
    text: str
    x_pt: float
    left: int
    top: int
    right: int
    bottom: int
    confs: list[float]
    words: list[str]


@dataclass
class Block:
    """One question as printed; `ocr_text` keeps the block's lines exactly as OCR read them."""

    qcode: str
    routing: str | None
    wording: str
    options: list[str]
    percents: list[str | None]
    refusal_options: list[str] = field(default_factory=list)
    refusal_percents: list[str | None] = field(default_factory=list)
    page: int = 0
    bbox: list[int] = field(default_factory=list)  # left, top, right, bottom in pixels at `dpi`
    dpi: int = 0
    confidence: float = 0.0  # mean tesseract word confidence (0-100)
    min_confidence: float = 0.0
    ocr_text: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def group_lines(words: pd.DataFrame) -> list[Line]:
    """Tesseract words → lines in reading order (page, then top of line)."""
    lines = []
    for (page, _b, _p, _l), g in words.groupby(["page", "block", "par", "line"], sort=False):
        g = g.sort_values("left")
        dpi = int(g["dpi"].iloc[0])
        lines.append(Line(
            page=int(page),
            text=" ".join(g["text"]),
            x_pt=float(g["left"].min()) * 72.0 / dpi,
            left=int(g["left"].min()),
            top=int(g["top"].min()),
            right=int((g["left"] + g["width"]).max()),
            bottom=int((g["top"] + g["height"]).max()),
            confs=[float(c) for c in g["conf"] if c >= 0],
            words=list(g["text"]),
        ))
    lines.sort(key=lambda ln: (ln.page, ln.top))
    return lines


def parse_percent(token: str) -> str | None:
    """OCR'd topline value → "12" / "<1"; None when the token is not a percentage."""
    if not PERCENT_TOKEN.match(token):
        return None
    core = token.rstrip("°*%'.,").replace(" ", "")
    if core.startswith("<"):
        return "<1"
    digits = core.translate(str.maketrans("OoIl|", "00111"))
    return str(int(digits)) if digits.isdigit() else None


def looks_like_refusal(label: str) -> bool:
    return is_refusal(label) or max(fuzz.ratio(label.lower(), w.lower()) for w in REFUSAL_WORDS) >= 80


def _finish(block: dict, dpi: int) -> Block:
    lines: list[Line] = block["lines"]
    confs = [c for ln in lines for c in ln.confs]
    options, percents, ref, ref_pct = [], [], [], []
    for pct, label in block["options"]:
        label = " ".join(label.split())
        if looks_like_refusal(label):
            ref.append(label)
            ref_pct.append(pct)
        else:
            options.append(label)
            percents.append(pct)
    return Block(
        qcode=block["qcode"],
        routing=block["routing"],
        wording=" ".join(" ".join(block["wording"]).split()),
        options=options,
        percents=percents,
        refusal_options=ref,
        refusal_percents=ref_pct,
        page=lines[0].page,
        bbox=[min(ln.left for ln in lines), min(ln.top for ln in lines),
              max(ln.right for ln in lines), max(ln.bottom for ln in lines)],
        dpi=dpi,
        confidence=round(sum(confs) / len(confs), 2) if confs else 0.0,
        min_confidence=min(confs) if confs else 0.0,
        ocr_text="\n".join(ln.text for ln in lines),
    )


def segment(words: pd.DataFrame, *, source: str = "questionnaire", layout: Layout = LAYOUT) -> list[Block]:
    """Question blocks in printed order; warns (PageWarning) for each page with text but no question."""
    if words.empty:
        return []
    dpi = int(words["dpi"].iloc[0])
    lines = [ln for ln in group_lines(words) if not FOOTER.match(ln.text.strip())]
    page_left = {p: min(ln.x_pt for ln in lines if ln.page == p) for p in {ln.page for ln in lines}}
    margin_zone = layout.code_width - 20.0
    option_zone = layout.code_width + 14.0
    blocks: list[Block] = []
    current: dict | None = None
    routing: tuple[str, Line] | None = None
    pages_with_questions: set[int] = set()

    def close() -> None:
        nonlocal current
        if current is not None:
            blocks.append(_finish(current, dpi))
            current = None

    for ln in lines:
        x = ln.x_pt - page_left[ln.page]
        first = ln.words[0]
        if x < margin_zone and ROUTING.match(first) and ln.text.rstrip().endswith(":"):
            close()
            routing = (ln.text.strip().rstrip(":").strip(), ln)
            continue
        code = CODE_TOKEN.match(first) if x < margin_zone else None
        if code:
            close()
            current = {"qcode": code.group(1), "routing": routing[0] if routing else None,
                       "wording": [" ".join(ln.words[1:])], "options": [], "lines": []}
            if routing and routing[1].page == ln.page:
                current["lines"].append(routing[1])
            current["lines"].append(ln)
            routing = None
            pages_with_questions.add(ln.page)
            continue
        if current is None:
            continue  # header text before the first question of a page
        pct = parse_percent(first) if x >= option_zone else None
        if pct is not None and len(ln.words) > 1:
            current["options"].append((pct, " ".join(ln.words[1:])))
        elif current["options"] and x >= option_zone:
            p, label = current["options"][-1]
            current["options"][-1] = (p, f"{label} {ln.text}")
        elif not current["options"]:
            current["wording"].append(ln.text)
        else:
            close()  # text at the margin after the options: not part of this question
            continue
        current["lines"].append(ln)
    close()
    for page in sorted(set(page_left) - pages_with_questions):
        warnings.warn(f"{source}: page {page}: no questions found on this page", PageWarning, stacklevel=2)
    return blocks


def blocks_frame(blocks: list[Block]) -> pd.DataFrame:
    return pd.DataFrame([b.to_dict() for b in blocks], columns=list(Block.__dataclass_fields__))
