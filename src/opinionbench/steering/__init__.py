"""Steering: the prompt context that points a model at a population (none, persona, few-shot).

A steering is a module with a `@steerings.register(name)` function `(data, qkey, attribute,
group) -> Context` (steering/base.py); adding one is that module plus one line below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from opinionbench.errors import ConfigError
from opinionbench.registry import Registry
from opinionbench.tables import OVERALL

if TYPE_CHECKING:
    from opinionbench.steering.base import Context, SteeringData

steerings: Registry[Callable[[SteeringData, str, str, str], Context]] = Registry("steering", {
    "none": "opinionbench.steering.none",
    "persona": "opinionbench.steering.persona",
    "few-shot": "opinionbench.steering.fewshot",
})


def steer(name: str, data: SteeringData, qkey: str, attribute: str, group: str) -> Context:
    """The context of steering `name` for one cell; only `none` may be asked about the public (Overall).

    Here, beside the registry, so that the steerings' shared types (base.py) need not import it."""
    context = steerings.get(name)
    if name != "none" and attribute == OVERALL:
        raise ConfigError(f"steering {name!r} needs a group; got {attribute}/{group}")
    return context(data, qkey, attribute, group)
