"""opinionbench: OpinionQA-XL from Pew ATP microdata and questionnaires, and LLM opinion-alignment evaluation."""

__version__ = "0.1.0"
