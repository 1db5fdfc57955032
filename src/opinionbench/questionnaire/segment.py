"""OCR words → question blocks (code, routing, wording, options, topline percentages, box).

The segmenter reads the topline layout of `layout.Layout` by columns, measured from each
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

from opinionbench.questionnaire.layout import CODE_LINE, FOOTER, LAYOUT, ROUTING, Layout, routing_of
from opinionbench.questionnaire.ocr import PageWarning
from opinionbench.survey.answer_classes import is_substantive

# `$3`: tesseract reads a 5 as `$` (53)
PERCENT_TOKEN = re.compile(r"^(<\s?[1lI|!i]|[0-9OoIl|]{1,3}|\$[0-9]{1,2}|\*)[°*%'.,_\"\->)}\]]?$")
GLUED_OPTION = re.compile(r"^(\d{1,3})[.:,](\w{1,3})$")  # `32.1`: a percentage and a short numeric label read as one
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
    spans: list[tuple[float, float]]  # each word's left and right edge in points


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
            spans=[(l * 72.0 / dpi, (l + w) * 72.0 / dpi) for l, w in zip(g["left"], g["width"])],
        ))
    lines.sort(key=lambda ln: (ln.page, ln.top))
    return lines


def join_code_pieces(text: str) -> str:
    """`J OBTRAIN` → `JOBTRAIN`, `GAP21Q4 c` → `GAP21Q4_c`, `NEW_Device_ Type` → `NEW_Device_Type`."""
    pieces = text.split()
    code = pieces[0]
    for piece in pieces[1:]:
        glue = "" if len(code) == 1 or code.endswith("_") or piece.startswith("_") else "_"
        code = f"{code}{glue}{piece}"
    return code


def _split_at_percent_edge(ln: Line, page_left: float, layout: Layout) -> tuple[str, str] | None:
    """A percentage and a short label read as one word (`11` = 1% of `1`, `13°55` = 13% of `5`).

    The percentage column is right-aligned at a known edge, so the characters of the word that
    lie left of the edge are the percentage and the rest is the label (characters are taken as
    evenly spaced within the word's box).
    """
    left, right = ln.spans[0]
    word = ln.words[0]
    edge = page_left + layout.code_width + (layout.percent_right + layout.label_offset) / 2
    if not (left < edge < right) or len(word) < 2:
        return None
    k = round((edge - left) / ((right - left) / len(word)))
    pct = parse_percent(word[:k]) if 0 < k < len(word) else None
    label = " ".join([word[k:].strip("°*%'.,_-\"")] + ln.words[1:]).strip()
    return (pct, label) if pct is not None and label else None


def _page_margin(lines: list[Line]) -> float:
    """The page's left margin: where its routing lines start (robust to specks of noise further left)."""
    routed = sorted(ln.x_pt for ln in lines if ROUTING.match(ln.words[0]))
    if routed:
        return routed[len(routed) // 2]
    xs = sorted(ln.x_pt for ln in lines)
    return xs[len(xs) // 10]


def parse_percent(token: str) -> str | None:
    """OCR'd topline value → "12" / "<1"; None when the token is not a percentage."""
    if not PERCENT_TOKEN.match(token):
        return None
    core = token.rstrip("°*%'.,_\"->)}]").replace(" ", "") if token != "*" else "*"
    if core == "*":
        return "<1"
    if core.startswith("<"):
        return "<1"
    digits = core.translate(str.maketrans("OoIl|$", "001115"))
    return str(int(digits)) if digits.isdigit() else None


def looks_like_refusal(label: str) -> bool:
    """A printed line has no value code: a plain "Don't know" line counts as a non-answer."""
    return not is_substantive(label) or max(fuzz.ratio(label.lower(), w.lower()) for w in REFUSAL_WORDS) >= 80


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


_WORD = re.compile(r"^[A-Z]?[a-z]{3,}$")


def _is_prose(candidate: str) -> bool:
    """A code may reach OCR in pieces (`GAP21Q4 _a`) but is never several plain words."""
    pieces = candidate.split()
    return len(pieces) > 1 and sum(bool(_WORD.match(p)) for p in pieces) >= 2


def segment(words: pd.DataFrame, *, source: str = "questionnaire", layout: Layout = LAYOUT) -> list[Block]:
    """Question blocks in printed order; warns (PageWarning) for each page with text but no question."""
    if words.empty:
        return []
    dpi = int(words["dpi"].iloc[0])
    lines = [ln for ln in group_lines(words) if not FOOTER.match(ln.text.strip())]
    page_left = {p: _page_margin([ln for ln in lines if ln.page == p]) for p in {ln.page for ln in lines}}
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
        routed = routing_of(ln.text) if x < margin_zone else None
        if routed:
            close()
            routing = (routed, ln)
            continue
        code = CODE_LINE.match(ln.text) if x < margin_zone else None
        if code and _is_prose(code.group(1)):
            code = None  # "Methodological note." at the margin is a sentence, not a question code
        if code:
            close()
            current = {"qcode": join_code_pieces(code.group(1)), "routing": routing[0] if routing else None,
                       "wording": [ln.text[code.end():]], "options": [], "lines": []}
            if routing and routing[1].page == ln.page:
                current["lines"].append(routing[1])
            current["lines"].append(ln)
            routing = None
            pages_with_questions.add(ln.page)
            continue
        if current is None:
            continue  # header text before the first question of a page
        pct = parse_percent(first) if x >= option_zone else None
        glued = GLUED_OPTION.match(first) if x >= option_zone and len(ln.words) == 1 else None
        split = _split_at_percent_edge(ln, page_left[ln.page], layout) if x >= option_zone else None
        if pct is not None and len(ln.words) > 1:
            current["options"].append((pct, " ".join(ln.words[1:])))
        elif glued:
            current["options"].append((str(int(glued.group(1))), glued.group(2)))
        elif split is not None:
            current["options"].append(split)
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
