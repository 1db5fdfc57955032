"""Model backends behind one interface (base.py); each backend is one module that owns its settings.

`backends` names them for params.yaml (`models.<name>.backend`). Its builtins name modules, not
classes, so choosing the `openai` backend (or validating params) never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opinionbench.registry import Registry

if TYPE_CHECKING:
    from opinionbench.models.base import Backend, BackendSettings

backends: Registry[type[Backend]] = Registry("model backend", {
    "hf": "opinionbench.models.hf",
    "openai": "opinionbench.models.openai_backend",
})


def load_backend(settings: BackendSettings) -> Backend:
    """The backend a validated `models:` entry describes (its class chosen by `settings.backend`)."""
    return backends.get(settings.backend).from_settings(settings)
