"""Steering: the prompt context that points a model at a population (none, persona, few-shot).

A steering is a module with a `@steerings.register(name)` function `(data, qkey, attribute,
group) -> Context` (steering/base.py); adding one is that module plus one line below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from opinionbench.registry import Registry

if TYPE_CHECKING:
    from opinionbench.steering.base import Context, SteeringData

steerings: Registry[Callable[[SteeringData, str, str, str], Context]] = Registry("steering", {
    "none": "opinionbench.steering.none",
    "persona": "opinionbench.steering.persona",
    "few-shot": "opinionbench.steering.fewshot",
})
