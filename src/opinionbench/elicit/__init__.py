"""Elicitation methods: turn (question, steering context) into a distribution over the options.

A method is a module that registers a `Method` (elicit/base.py): its exact prompts (hashed into
every request), its run over a batch of items, and the templates it reads. Adding one is that
module plus one line below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opinionbench.registry import Registry

if TYPE_CHECKING:
    from opinionbench.elicit.base import Method

methods: Registry[Method] = Registry("elicitation method", {
    "logprobs": "opinionbench.elicit.logprobs",
    "verbalized": "opinionbench.elicit.verbalized",
    "sequence": "opinionbench.elicit.sequence",
})
