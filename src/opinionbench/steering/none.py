"""No steering: the question asked of the model as it is, about the public (adults in the United States)."""

from __future__ import annotations

from opinionbench.steering import steerings
from opinionbench.steering.base import Context, SteeringData
from opinionbench.steering.templates import fill, templates_hash


@steerings.register("none")
def context(data: SteeringData, qkey: str, attribute: str, group: str) -> Context:
    return Context(fill("system.txt"), "adults in the United States", templates_hash("system.txt"), ("system.txt",))
