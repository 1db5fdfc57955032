"""The tables that carry data from build to report, whatever the source (DESIGN: two tables).

`questions`: one row per question. `distributions`: one row per (qkey, attribute, group), with
`probs` aligned to that question's `options`. Predictions share the distributions key and
alignment, so every metric is a join plus a vectorised formula.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from opinionbench.errors import OpinionBenchError

QUESTION_COLUMNS = [
    "qkey", "wave", "qcode", "question", "options", "option_codes", "refusal_options",
    "refusal_codes", "ordinal", "weight_column", "survey", "wave_start", "wave_end", "topic",
    "text_source", "source_file",
]
DISTRIBUTION_COLUMNS = ["qkey", "attribute", "group", "probs", "refusal_rate", "n", "n_eff"]
# Predictions: one table per (dataset, model, method, steering); see docs/architecture.md.
PREDICTION_COLUMNS = [
    "qkey", "attribute", "group", "probs", "out_of_option_mass", "raw_reply", "failed", "error",
    "template_hash", "model_id", "model_revision", "method", "steering", "dataset",
]
OVERALL = "Overall"


class TableError(OpinionBenchError):
    """A table on disk is missing or lacks required columns."""


def read_table(path: Path, required: list[str]) -> pd.DataFrame:
    if not Path(path).exists():
        raise TableError(f"{path}: not found (run the stage that produces it, e.g. `dvc repro`)")
    frame = pd.read_parquet(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise TableError(f"{path}: missing columns {missing}")
    return frame


def read_dataset(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(questions, distributions) of a built or imported dataset directory."""
    directory = Path(directory)
    return (
        read_table(directory / "questions.parquet", ["qkey", "question", "options", "ordinal"]),
        read_table(directory / "distributions.parquet", ["qkey", "attribute", "group", "probs"]),
    )


def truth_by_cell(distributions: pd.DataFrame) -> dict[tuple[str, str, str], np.ndarray]:
    """(qkey, attribute, group) -> the human distribution, for lookups cell by cell.

    `.tolist()` first: iterating pandas' Arrow-backed string columns element by element is ~5x slower.
    """
    d = distributions
    return {(q, a, g): np.asarray(p, dtype=float) for q, a, g, p in
            zip(d["qkey"].tolist(), d["attribute"].tolist(), d["group"].tolist(), d["probs"].tolist())}
