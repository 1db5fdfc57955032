"""`none`: the raw OCR text, for measuring what correction adds (and as a fallback)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opinionbench.questionnaire.correct import corrections
from opinionbench.questionnaire.correct.base import Correction, Hint
from opinionbench.questionnaire.segment import Block

if TYPE_CHECKING:
    from opinionbench.questionnaire.correct.settings import CorrectionParams


@corrections.register("none")
class NoCorrection:
    name = "none"

    def __init__(self, params: CorrectionParams | None = None) -> None:
        self.params = params

    def correct(self, block: Block, hint: Hint | None) -> Correction:
        return Correction(question=block.wording, options=list(block.options), backend=self.name)
