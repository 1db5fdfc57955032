"""The steering seam: `steer(name, ...)` gives the system prompt that points the model at a population.

Registered steerings: `none` (the public), `persona` (steering/persona.py) and `few-shot`
(steering/fewshot.py). Adding one is a module with a `context(...)` function plus one line in
STEERINGS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opinionbench.similarity import SimilarQuestions
from opinionbench.steering.templates import fill, templates_hash
from opinionbench.tables import OVERALL


@dataclass(frozen=True)
class Context:
    """What a steering adds to a prompt: its system message, the population named in questions
    that ask about "the share of ..." and the hash of the templates it used."""

    system: str
    population: str
    template_hash: str
    templates: tuple[str, ...]


class SteeringData:
    """The dataset a steering may draw on (few-shot needs other questions' true distributions)."""

    def __init__(self, questions: pd.DataFrame, distributions: pd.DataFrame, *, k_shots: int = 3,
                 persona_style: str = "bio") -> None:
        self.questions = questions.set_index("qkey", drop=False)
        self.truth = {(q, a, g): np.asarray(p, dtype=float) for q, a, g, p in
                      distributions[["qkey", "attribute", "group", "probs"]].itertuples(index=False)}
        self.with_group: dict[tuple[str, str], set[str]] = {}
        for q, a, g in self.truth:
            self.with_group.setdefault((a, g), set()).add(q)
        self.similar = SimilarQuestions(questions)
        self.k_shots = k_shots
        self.persona_style = persona_style


def none_context(data: SteeringData, qkey: str, attribute: str, group: str) -> Context:
    return Context(fill("system.txt"), "adults in the United States", templates_hash("system.txt"), ("system.txt",))


def steer(name: str, data: SteeringData, qkey: str, attribute: str, group: str) -> Context:
    from opinionbench.errors import ConfigError

    if name not in STEERINGS:
        raise ConfigError(f"unknown steering {name!r} (known: {', '.join(STEERINGS)})")
    if name != "none" and attribute == OVERALL:
        raise ConfigError(f"steering {name!r} needs a group; got {attribute}/{group}")
    return STEERINGS[name](data, qkey, attribute, group)


def _registry() -> dict[str, Callable[[SteeringData, str, str, str], Context]]:
    from opinionbench.steering import fewshot, persona

    return {"none": none_context, "persona": persona.context, "few-shot": fewshot.context}


STEERINGS = _registry()
