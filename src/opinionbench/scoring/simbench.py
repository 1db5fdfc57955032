"""SimBench's score (Hu et al. 2025, "SimBench", which ranks 45 models by it), beside ours.

    S = 100 · (1 − TV(model, humans) / TV(uniform, humans))

per dataset: both total variations averaged over the dataset's questions (each question's rows
first), then the ratio. 100 is a perfect simulation, 0 is no better than answering uniformly at
random, and below 0 is worse than that. The uniform reference is computed for every scored row
(`tv_uniform`, a row metric), over the question's own options: its ordinal positions are given
for every option and NaN only in the padding (`metrics.pad_rows`), so they count the options.
"""

from __future__ import annotations

import numpy as np

from opinionbench.scoring import metrics
from opinionbench.scoring.registry import MetricSpec, Shown, register, register_metric


@register_metric("tv_uniform", label="TV of uniform", higher_is_better=False,
                 description="total variation between the uniform distribution over the question's options and the humans")
def tv_uniform(pred: np.ndarray, target: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
    present = ~np.isnan(ordinal)
    k = present.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        uniform = np.where(present, 1.0 / np.where(k > 0, k, 1), 0.0)
    return np.atleast_1d(metrics.total_variation(uniform, target))


for _rows, _scope in (("groups", "each demographic group"), ("overall", "the public (Overall rows)")):
    register(MetricSpec(
        f"simbench_{_rows}", f"SimBench score ({'groups' if _rows == 'groups' else 'public'})",
        f"100·(1 − TV/TV(uniform)) to {_scope}, both means over the dataset's questions (SimBench 2025); "
        "0 = uniform, 100 = perfect", True, of="tv", rows=_rows, aggregate="skill", reference="tv_uniform",
        interval=True, shown=Shown(markdown=6 if _rows == "groups" else None, page=5 if _rows == "groups" else None,
                                   mlflow_interval=False)))
