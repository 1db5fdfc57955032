"""The reader's few knobs, in one place (every part of the reader takes them)."""

from __future__ import annotations

from dataclasses import dataclass

from opinionbench.questionnaire.ocr import BAND


@dataclass(frozen=True)
class ReaderSettings:
    """The reader's few knobs; `benchmarks/ocr_accuracy.py` chooses them leaving one style out."""

    anchor_min_ratio: float = 80.0  # wording (or item) similarity, 0-100, for a line to start a question
    code_min_ratio: float = 88.0  # printed code vs codebook code after folding OCR confusions
    option_min_ratio: float = 70.0  # OCR'd option label vs codebook label
    band: float = BAND  # top and bottom share of a page where running headers and footers live
    max_label_lines: int = 10  # an option label may wrap over this many lines (narrow label columns)
