"""Predictions that need no weights: the floor and the references every model is compared with.

- `uniform`: 1/n over the options: what knowing nothing scores.
- `overall-prior`: every group predicted with the Overall (public) distribution: what a model
  that is perfectly representative but not steerable at all scores on group rows.
- `similar-questions`: the mean distribution, for the same group, of the k most similar other
  questions with as many options (never the question itself): what "knowing the group's
  general leanings" scores without reading the question.

Each is a pure function of the dataset's two tables and the cells to predict
(`opinionbench.inference.cells`), returning a predictions frame with the
`opinionbench.tables.PREDICTION_COLUMNS` schema (method `baseline`, steering `none`; rows for
Overall and every requested group), registered by name in `baselines_registry`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pathlib import Path

import numpy as np
import pandas as pd

from opinionbench.inference import baselines_registry
from opinionbench.inference.cells import Cell
from opinionbench.inference.predictions import BASELINE_METHOD, BASELINE_STEERING  # noqa: F401 - the layout's, re-exported
from opinionbench.neighbours import Neighbours, load_neighbours
from opinionbench.tables import OVERALL, truth_by_cell

BASELINE_REVISION = "v1"




def _frame(cells: pd.DataFrame, probs: list, errors: list, name: str, dataset: str, params: str) -> pd.DataFrame:
    return pd.DataFrame({
        "qkey": cells["qkey"].to_numpy(),
        "attribute": cells["attribute"].to_numpy(),
        "group": cells["group"].to_numpy(),
        "probs": [list(map(float, p)) if p is not None else [] for p in probs],
        "out_of_option_mass": np.nan,
        "raw_reply": None,
        "failed": [e is not None for e in errors],
        "error": errors,
        "template_hash": hashlib.sha256(f"{name}:{params}".encode()).hexdigest()[:16],
        "model_id": name,
        "model_revision": BASELINE_REVISION,
        "method": BASELINE_METHOD,
        "steering": BASELINE_STEERING,
        "dataset": dataset,
    })


@baselines_registry.register("uniform")
def uniform(questions: pd.DataFrame, distributions: pd.DataFrame, cells: pd.DataFrame,
            dataset: str, k: int = 5, neighbours: Path | None = None) -> pd.DataFrame:
    n_options = dict(zip(questions["qkey"], questions["options"].map(len)))
    probs = [np.full(n_options[q], 1.0 / n_options[q]) for q in cells["qkey"]]
    return _frame(cells, probs, [None] * len(cells), "uniform", dataset, "")


@baselines_registry.register("overall-prior")
def overall_prior(questions: pd.DataFrame, distributions: pd.DataFrame, cells: pd.DataFrame,
                  dataset: str, k: int = 5, neighbours: Path | None = None) -> pd.DataFrame:
    truth = truth_by_cell(distributions)
    probs, errors = [], []
    for q in cells["qkey"]:
        p = truth.get((q, OVERALL, OVERALL))
        probs.append(p)
        errors.append(None if p is not None else f"{q}: no Overall distribution in the dataset")
    return _frame(cells, probs, errors, "overall-prior", dataset, "")


@baselines_registry.register("similar-questions")
def similar_questions(questions: pd.DataFrame, distributions: pd.DataFrame, cells: pd.DataFrame,
                      dataset: str, k: int = 5, neighbours: Path | None = None) -> pd.DataFrame:
    similar = load_neighbours(neighbours, questions)
    truth = truth_by_cell(distributions)
    has_group: dict[tuple[str, str], set[str]] = {}
    for q, a, g in truth:
        has_group.setdefault((a, g), set()).add(q)
    probs, errors = [], []
    nobody: set[str] = set()
    for q, a, g in zip(cells["qkey"].tolist(), cells["attribute"].tolist(), cells["group"].tolist()):
        neighbours = similar.most_similar(q, k, same_option_count=True, allowed=has_group.get((a, g), nobody))
        if not neighbours:
            probs.append(None)
            errors.append(f"{q}/{a}/{g}: no other question with as many options has this group's distribution")
            continue
        mean = sum(truth[(n, a, g)] for n in neighbours) / len(neighbours)  # a few small arrays: faster than stacking
        probs.append(mean / mean.sum())
        errors.append(None)
    return _frame(cells, probs, errors, "similar-questions", dataset, f"k={k}")


def baseline_predictions(name: str, questions: pd.DataFrame, distributions: pd.DataFrame,
                         cells: Sequence[Cell], dataset: str, k: int = 5,
                         neighbours: Path | None = None) -> pd.DataFrame:
    """Predictions of baseline `name` for `cells` (see `opinionbench.inference.cells.cells_to_predict`).

    `neighbours`: the `neighbours` stage's table (built in memory when None or absent).
    """
    frame = pd.DataFrame(list(cells), columns=["qkey", "attribute", "group"])
    return baselines_registry.get(name)(questions, distributions, frame, dataset, k=k, neighbours=neighbours)
