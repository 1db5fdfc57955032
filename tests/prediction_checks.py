"""What the inference tests check of a predictions table (not needed by the package itself)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from opinionbench.tables import TableError


def check_alignment(predictions: pd.DataFrame, questions: pd.DataFrame) -> None:
    """Every non-failed row has one probability per option of its question, summing to 1."""
    n_options = dict(zip(questions["qkey"], questions["options"].map(len)))
    for row in predictions.itertuples(index=False):
        if row.failed:
            continue
        if row.qkey not in n_options:
            raise TableError(f"predictions: {row.qkey}: not a question of the dataset")
        if len(row.probs) != n_options[row.qkey] or not math.isclose(float(np.sum(row.probs)), 1.0, abs_tol=1e-6):
            raise TableError(
                f"predictions: {row.qkey}/{row.attribute}/{row.group}: probs {list(row.probs)} "
                f"not a distribution over {n_options[row.qkey]} options"
            )
