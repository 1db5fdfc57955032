"""Elicitation methods: turn (question, steering context) into a distribution over the options.

A method is a module that registers a `Method` (elicit/base.py): its exact prompts (hashed into
every request), its run over a batch of items, the templates it reads, its own settings class
(params.yaml `infer.<method>:`) and its capabilities. Adding one is that module plus one line
below; code elsewhere asks `capabilities(name)` what a method is, never compares names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opinionbench.registry import Registry

if TYPE_CHECKING:
    from opinionbench.elicit.base import Capabilities, Method, Settings

methods: Registry[Method] = Registry("elicitation method", {
    "logprobs": "opinionbench.elicit.logprobs",
    "verbalized": "opinionbench.elicit.verbalized",
    "sequence": "opinionbench.elicit.sequence",
})


def capabilities(name: str) -> Capabilities:
    """What the method registered as `name` is (elicit/base.py `Capabilities`): ask this, never compare names."""
    return methods.get(name).capabilities


def with_capability(**wanted: object) -> tuple[str, ...]:
    """The registered methods whose capabilities match, e.g. `with_capability(calibratable=True)`."""
    return tuple(name for name in methods.names()
                 if all(getattr(capabilities(name), key) == value for key, value in wanted.items()))


def k2s_pair() -> tuple[str, str]:
    """(knowledge method, simulation method) of the knowledge-to-simulation gap."""
    (knowledge,), (simulation,) = with_capability(k2s_role="knowledge"), with_capability(k2s_role="simulation")
    return knowledge, simulation


def settings_classes() -> dict[str, type[Settings]]:
    """Every registered method's own settings class, by method name (imports the methods)."""
    return {name: methods.get(name).settings for name in methods.names()}
