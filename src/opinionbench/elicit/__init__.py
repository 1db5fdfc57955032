"""Elicitation methods: turn (question, steering context) into a distribution over the options.

Each method module has `prompts(item, settings)` (the exact prompts, used for the request hash)
and `run(backend, items, settings)`. Adding a method is one module plus one line in METHODS.
"""

from __future__ import annotations

from types import ModuleType


def methods() -> dict[str, ModuleType]:
    from opinionbench.elicit import logprobs, sequence, verbalized

    return {"logprobs": logprobs, "verbalized": verbalized, "sequence": sequence}


METHOD_NAMES = ("logprobs", "verbalized", "sequence")
