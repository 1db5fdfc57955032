"""What a predictions table covers: the questions params select, and their cells (qkey, attribute, group).

Questions are a seeded sample (`infer.questions`), so a default run stays small and every
model and baseline is asked the same ones. Cells follow one rule for model runs and baselines
alike: question by question (in the order given), the public cell (Overall/Overall) first,
then the steered groups (attributes sorted; groups in the order params.yaml lists them, or
sorted when every group is asked for). A cell exists only where the dataset has its
distribution, since there is nothing to compare a prediction with otherwise; the one exception
is the unsteered model's public cell, asked of every question even in a dataset with no
Overall (per-country data), so an unsteered run has a row per question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from opinionbench.errors import ConfigError
from opinionbench.tables import OVERALL, read_dataset

Cell = tuple[str, str, str]


def sample_questions(questions: pd.DataFrame, n: int | None, seed: int, waves: Sequence[str] = ()) -> list[str]:
    """A seeded sample of qkeys (sorted), optionally from some waves only; n=None keeps all."""
    pool = questions
    if waves:
        pool = pool[pool["wave"].isin(set(waves))] if "wave" in pool.columns else pool.iloc[0:0]
    keys = sorted(pool["qkey"])
    if n is not None and n < len(keys):
        keys = sorted(np.random.default_rng(seed).choice(keys, size=n, replace=False).tolist())
    return keys


def select_questions(dataset_dir: Path, n: int | None, seed: int, waves: Sequence[str] = (), *,
                     every_question: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(questions, distributions, the sampled qkeys) of `dataset_dir`; none selected is an error.

    `n`, `seed`, `waves`: the sample (params.yaml `infer.questions`); `every_question`: all the
    dataset's questions instead.
    """
    questions, distributions = read_dataset(dataset_dir)
    if every_question:
        return questions, distributions, sorted(questions["qkey"])
    qkeys = sample_questions(questions, n, seed, waves)
    if not qkeys:
        raise ConfigError(f"params.yaml: infer.questions: no question of {dataset_dir} is selected")
    return questions, distributions, qkeys


def cells_to_predict(distributions: pd.DataFrame, qkeys: Sequence[str], groups: Mapping[str, Sequence[str]] | None,
                     *, steering: str | None = None) -> list[Cell]:
    """The cells of `qkeys` for one predictions table.

    `groups` maps attribute -> group names (e.g. {"POLPARTY": ["Republican", "Democrat"]}); None
    means every group the distributions have. `steering` None (baselines): the public cell and
    the groups'; "none": the public cell only; any other steering: the groups' only.
    """
    # .tolist(): iterating pandas' Arrow-backed string columns element by element is ~5x slower
    wanted_qkeys = set(qkeys)
    keys = distributions["qkey"].tolist()
    rows = [i for i, q in enumerate(keys) if q in wanted_qkeys]
    attributes, group_names = distributions["attribute"].tolist(), distributions["group"].tolist()
    present = {(keys[i], attributes[i], group_names[i]) for i in rows}
    public = steering in (None, "none")
    steered = steering != "none"
    every_group: dict[str, dict[str, list[str]]] = {}
    if groups is None and steered:
        for q, a, g in sorted(present):
            if a != OVERALL:
                every_group.setdefault(q, {}).setdefault(a, []).append(g)
    cells: list[Cell] = []
    for q in qkeys:
        if public and (steering == "none" or (q, OVERALL, OVERALL) in present):
            cells.append((q, OVERALL, OVERALL))
        if steered:
            wanted = every_group.get(q, {}) if groups is None else groups
            cells.extend((q, a, g) for a in sorted(wanted) for g in wanted[a] if (q, a, g) in present)
    return list(dict.fromkeys(cells))
