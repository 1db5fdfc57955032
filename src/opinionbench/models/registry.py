"""Backends by name: adding one is a module plus one line in BACKENDS.

`load_backend(entry)` builds the backend of a `models:` entry of params.yaml (see config.py
`ModelEntry`). Imports are lazy so that the openai path never pays for importing torch.
"""

from __future__ import annotations

import importlib

from opinionbench.errors import ConfigError
from opinionbench.models.base import Backend

# backend name -> "module:class"
BACKENDS: dict[str, str] = {
    "hf": "opinionbench.models.hf:HFBackend",
    "openai": "opinionbench.models.openai_backend:OpenAIBackend",
}


def load_backend(name: str, model: str, settings: dict) -> Backend:
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)}, or a baseline)")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(model, **settings)
