"""Correction backends (`none`, `codebook`, `openai`) behind one interface; see base.py."""

from opinionbench.questionnaire.correct.base import BACKENDS, Correction, CorrectionBackend, Hint, make_backend, register

__all__ = ["BACKENDS", "Correction", "CorrectionBackend", "Hint", "make_backend", "register"]
