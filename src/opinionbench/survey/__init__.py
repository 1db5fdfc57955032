"""Pew ATP microdata → OpinionQA-XL questions and weighted group distributions."""

from opinionbench.survey.wave import Wave, distributions, load_wave
from opinionbench.tables import DISTRIBUTION_COLUMNS, QUESTION_COLUMNS

__all__ = ["Wave", "load_wave", "distributions", "QUESTION_COLUMNS", "DISTRIBUTION_COLUMNS"]
