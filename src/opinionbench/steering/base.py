"""The steering seam: `steer(name, ...)` gives the system prompt that points the model at a population.

The steerings themselves are registered in `opinionbench.steering.steerings`; what they share
is here: the `Context` they return and the `SteeringData` they may draw on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opinionbench.errors import ConfigError
from opinionbench.similarity import SimilarQuestions
from opinionbench.steering import steerings
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


def steer(name: str, data: SteeringData, qkey: str, attribute: str, group: str) -> Context:
    """The context of steering `name` for one cell; only `none` may be asked about the public (Overall)."""
    context = steerings.get(name)
    if name != "none" and attribute == OVERALL:
        raise ConfigError(f"steering {name!r} needs a group; got {attribute}/{group}")
    return context(data, qkey, attribute, group)
