"""Questionnaire PDFs → OCR → correction → review, with provenance back to the page.

`read_questionnaire(pdf, wave=None, correction="codebook")` is the one-call public API; the
DVC stages `ocr@<wave>` and `correct@<wave>` run the same steps with their outputs on disk.
"""

from opinionbench.questionnaire.pipeline import read_questionnaire

__all__ = ["read_questionnaire"]
