"""`CorrectionParams`: the correction backends' settings (params.yaml `questionnaire.correction`).

They live with the backends that read them, as a model backend owns its settings; config.py
only places them under `questionnaire:`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from opinionbench.io import DataPath
from opinionbench.questionnaire.correct.base import corrections


class CorrectionParams(BaseModel):
    """Questionnaire OCR correction; the API key is read from the environment variable named here."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # a misspelt knob is an error, not ignored

    backend: str = Field("codebook", description="a correction backend: codebook | openai | none, or one registered")
    base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible endpoint (openai backend)")
    model: str = "smollm2"
    api_key_env: str = Field("OPINIONBENCH_LLM_API_KEY", description="name of the env variable holding the key")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=16)
    response_format: Literal["json_schema", "json_object"] = Field(
        "json_schema", description="json_schema: OpenAI style; json_object: {type: json_object, schema} (llama-cpp-python)"
    )
    timeout: float = Field(60.0, gt=0, description="seconds per request")
    max_retries: int = Field(3, ge=0, le=10, description="the OpenAI client's own retries (as inference)")
    drift_threshold: float = Field(0.15, gt=0, le=1, description="max normalised edit distance OCR -> corrected")
    hint_min_similarity: float = Field(0.6, ge=0, le=1, description="corrected wording vs codebook wording")
    cache_dir: DataPath = Path("data/cache/llm")

    @field_validator("backend")
    @classmethod
    def registered_backend(cls, name: str) -> str:
        """Checked against the registry, so a new backend module needs no edit here."""
        return corrections.check(name)
