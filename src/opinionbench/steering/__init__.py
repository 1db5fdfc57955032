"""Steering: the prompt context that points a model at a population (none, persona, few-shot)."""

from opinionbench.steering.base import STEERINGS, Context, SteeringData, steer

__all__ = ["STEERINGS", "Context", "SteeringData", "steer"]
