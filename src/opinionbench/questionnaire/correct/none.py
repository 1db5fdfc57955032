"""`none`: the raw OCR text, for measuring what correction adds (and as a fallback)."""

from __future__ import annotations

from opinionbench.questionnaire.correct.base import Correction, Hint, register
from opinionbench.questionnaire.segment import Block


@register("none")
class NoCorrection:
    name = "none"

    def __init__(self, params=None) -> None:
        self.params = params

    def correct(self, block: Block, hint: Hint | None) -> Correction:
        return Correction(question=block.wording, options=list(block.options), backend=self.name)
