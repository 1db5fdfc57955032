"""Pew ATP microdata → OpinionQA-XL questions and weighted group distributions."""

from opinionbench.survey.wave import DISTRIBUTION_COLUMNS, QUESTION_COLUMNS, Wave, distributions, load_wave

__all__ = ["Wave", "load_wave", "distributions", "QUESTION_COLUMNS", "DISTRIBUTION_COLUMNS"]
