"""Where the `hf` backend's weights come from: a hub id, a model directory, a GGUF file or the embedded model.

A GGUF file is dequantised once (~26 s for SmolLM2) and the converted weights are cached
under `cache_dir` keyed by the file's hash, so later runs load in about a second. The revision
recorded with every prediction names exactly those weights (the GGUF's hash, a directory's
file list, or the hub commit).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from opinionbench.io import file_sha256
from opinionbench.models.base import ModelError

EMBEDDED_SMOLLM2 = "embedded:smollm2"


def convert_gguf(gguf: Path, cache_dir: Path) -> tuple[Path, str]:
    """Dequantise a GGUF once into a transformers directory under cache_dir; (dir, file sha256).

    The directory is written under a temporary name and renamed when complete, so a killed
    conversion never leaves a half-written model that looks usable.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    digest = file_sha256(gguf)
    target = Path(cache_dir) / f"{gguf.stem}-{digest[:12]}"
    if (target / "config.json").is_file():
        return target, digest
    print(f"converting {gguf.name} to transformers weights (once) -> {target}")
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config.architectures = [type(loaded).__name__]
    with torch.device("meta"):  # no second fp32 copy: the fresh model takes the loaded tensors
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), assign=True)
    del loaded
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target, digest


def resolve_model(model: str, cache_dir: Path, revision: str | None) -> tuple[str, str, str]:
    """(what to load, model id, revision) for a hub id, a directory, a .gguf file or the embedded model."""
    if model == EMBEDDED_SMOLLM2:
        from opinionbench.embedded import SMOLLM2_ID, smollm2_gguf

        directory, digest = convert_gguf(smollm2_gguf(), cache_dir)
        return str(directory), SMOLLM2_ID, f"gguf-sha256:{digest[:16]}"
    path = Path(model).expanduser()
    if model.endswith(".gguf"):
        if not path.is_file():
            raise ModelError(f"{model}: GGUF file not found")
        directory, digest = convert_gguf(path, cache_dir)
        return str(directory), path.name, f"gguf-sha256:{digest[:16]}"
    if path.exists() or model.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise ModelError(f"{model}: not a model directory (no config.json); expected a hub id, a directory or a .gguf file")
        stamp = hashlib.sha256()
        for f in sorted(path.iterdir()):
            if f.is_file():
                stamp.update(f"{f.name}:{f.stat().st_size}".encode())
        return str(path), path.name, revision or f"dir:{stamp.hexdigest()[:16]}"
    return model, model, revision or "main"
