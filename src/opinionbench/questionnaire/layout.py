"""The topline page contract shared by the writer (render.py) and the reader (segment.py).

Why a module of its own: the segmenter must read real Pew toplines, not just our synthetic
ones, so it may depend on the page geometry and the printed forms of routing, code and footer
lines, never on the renderer. Each printed form sits next to the pattern that reads it back
from OCR text, so a change to one shows the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Page geometry in PDF points (1/72 inch); the segmenter reads columns back from it."""

    page_width: float = 612.0
    page_height: float = 792.0
    margin: float = 54.0
    code_width: float = 110.0  # the wording starts this far right of the margin
    percent_right: float = 40.0  # right edge of the percentage column, right of the wording column
    label_offset: float = 52.0  # option labels start this far right of the wording column
    font_size: float = 10.5
    leading: float = 14.0

    @property
    def wording_x(self) -> float:
        return self.margin + self.code_width

    @property
    def option_min_x(self) -> float:
        """Option lines start right of this (the percentage column), wording lines left of it."""
        return self.wording_x + 14.0


LAYOUT = Layout()


def routing_line(routing: str) -> str:
    """`ASK ALL:` at the margin, above the question it routes."""
    return f"{routing.rstrip(':')}:"


def code_label(qcode: str) -> str:
    """`CODE.` at the margin, the wording following in a hanging indent."""
    return f"{qcode}."


def footer_line(page: int) -> str:
    return f"Page {page}"


# Read back from OCR text, tolerating what tesseract does to these forms.
ROUTING = re.compile(r"^ASK\b", re.IGNORECASE)
# `CODE.` at the start of a line (only codes, routing, headers and footers sit at the margin), in
# up to three OCR pieces: tesseract splits `J OBTRAIN`, reads `Q4_c` as `Q4 c` and misreads
# characters (`GOOD] OBS`, `QCEN?`, `Q26_¢`); the codebook match sorts them out
CODE_LINE = re.compile(r"^([A-Za-z][^\s.,:;=]*(?: [^\s.,:;=]+){0,2})[.,]{1,2}(?:\s+|$)")
FOOTER = re.compile(r"^P\s?a\s?g\s?e\s*\S{1,4}$", re.IGNORECASE)


def routing_of(text: str) -> str | None:
    """`ASK ALL:` / `ASK FORM 1:` read back as the routing (`ASK ALL`); None for any other line."""
    text = text.strip()
    if not ROUTING.match(text) or not text.endswith(":"):
        return None
    return text.rstrip(":").strip()


# characters OCR confuses inside a question code, folded to one representative before comparing
_CODE_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1", "|": "1", "]": "1", "}": "1", ")": "1", "{": "1",
                                  "!": "1", "?": "7", "¢": "C", "©": "C", "S": "5", "$": "5", "§": "5", "B": "8",
                                  "Z": "2", "_": None, " ": None})


def fold_code(code: str) -> str:
    """A question code as OCR may have read it (`QCENS` = `QCEN5`, `GAP2104_a` = `GAP21Q4_a`), folded."""
    return code.upper().translate(_CODE_CONFUSABLE)


def printed_code(text: str) -> str:
    """A code without the brackets and closing punctuation of its printed form (`[CODE]`, `CODE.`)."""
    return text.strip("[](){}.:,")
