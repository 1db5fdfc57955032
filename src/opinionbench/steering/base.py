"""What the steerings share: the `Context` they return and the `SteeringData` they may draw on.

The steerings themselves are registered in `opinionbench.steering.steerings`, and
`opinionbench.steering.steer(name, ...)` gives one cell's context.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from opinionbench.neighbours import Neighbours, load_neighbours
from opinionbench.prompting import LETTERS
from opinionbench.tables import truth_by_cell


@dataclass(frozen=True)
class Context:
    """What a steering adds to a prompt: its system message, the population named in questions
    that ask about "the share of ..." and the hash of the templates it used."""

    system: str
    population: str
    template_hash: str
    templates: tuple[str, ...]


class SteeringData:
    """The dataset a steering may draw on (few-shot needs other questions' true distributions).

    The truth lookup and the neighbours table are loaded on first use: an unsteered or persona
    run over the whole real build never pays for them.
    """

    def __init__(self, questions: pd.DataFrame, distributions: pd.DataFrame, *, k_shots: int = 3,
                 persona_style: str = "bio", neighbours: Path | None = None) -> None:
        self.questions = questions.set_index("qkey", drop=False)
        self._distributions = distributions
        self._neighbours_path = neighbours
        self.k_shots = k_shots
        self.persona_style = persona_style
        self._pools: dict[tuple[str, str], set[str]] = {}

    @cached_property
    def truth(self) -> dict[tuple[str, str, str], np.ndarray]:
        return truth_by_cell(self._distributions)

    @cached_property
    def with_group(self) -> dict[tuple[str, str], set[str]]:
        out: dict[tuple[str, str], set[str]] = {}
        d = self._distributions
        for q, a, g in zip(d["qkey"].tolist(), d["attribute"].tolist(), d["group"].tolist()):
            out.setdefault((a, g), set()).add(q)
        return out

    def example_pool(self, attribute: str, group: str) -> set[str]:
        """Questions that can serve as a few-shot example for this group: it has their distribution,
        and they can be shown as a lettered list (2 to 26 options)."""
        key = (attribute, group)
        if key not in self._pools:
            askable = self._askable
            self._pools[key] = {q for q in self.with_group.get(key, set()) if q in askable}
        return self._pools[key]

    @cached_property
    def _askable(self) -> set[str]:
        n_options = self.questions["options"].map(len)
        return set(self.questions["qkey"][(n_options >= 2) & (n_options <= len(LETTERS))].tolist())

    @cached_property
    def similar(self) -> Neighbours:
        return load_neighbours(self._neighbours_path, self.questions.reset_index(drop=True))
