"""Read, write and locate predictions tables (schema: `opinionbench.tables.PREDICTION_COLUMNS`).

One parquet per (dataset, model, method, steering) at
`<root>/<dataset>/<model>/<method>/<steering>.parquet`; `probs` is aligned with the dataset's
`options` in their original order, an empty list where the row `failed`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from opinionbench.io import write_parquet
from opinionbench.tables import PREDICTION_COLUMNS, TableError, read_table

DEFAULT_ROOT = Path("data/predictions")
# A baseline's table in that layout: <root>/<dataset>/<baseline name>/baseline/none.parquet
BASELINE_METHOD = "baseline"
BASELINE_STEERING = "none"


def prediction_path(dataset: str, model: str, method: str, steering: str, root: Path = DEFAULT_ROOT) -> Path:
    return Path(root) / dataset / model / method / f"{steering}.parquet"


def normalise_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    """Exactly PREDICTION_COLUMNS, in order, with stable dtypes and a deterministic row order."""
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise TableError(f"predictions frame lacks columns {missing}")
    out = frame[PREDICTION_COLUMNS].copy()
    out["probs"] = out["probs"].map(lambda p: [float(x) for x in (p if p is not None else [])])
    out["out_of_option_mass"] = out["out_of_option_mass"].astype(float)
    out["failed"] = out["failed"].astype(bool)
    for col in ("raw_reply", "error"):
        out[col] = out[col].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return out.sort_values(["qkey", "attribute", "group"], kind="stable").reset_index(drop=True)


RUN_METADATA = "opinionbench"  # parquet metadata key (pandas `attrs`): what the run used and cost


def write_predictions(frame: pd.DataFrame, path: Path, metadata: dict | None = None) -> None:
    """The table, plus `metadata` (every knob the run used, its cost) in the file itself, so
    whoever reads the predictions — evaluate, MLflow — knows how they were made, whatever
    params.yaml says today."""
    out = normalise_predictions(frame)
    if metadata:
        out.attrs[RUN_METADATA] = metadata
    write_parquet(out, Path(path))


def run_metadata(frame: pd.DataFrame) -> dict:
    """What `write_predictions` recorded ({} for a file written without metadata)."""
    return dict(frame.attrs.get(RUN_METADATA) or {})


def read_predictions(path: Path) -> pd.DataFrame:
    frame = read_table(Path(path), PREDICTION_COLUMNS)
    frame["probs"] = frame["probs"].map(lambda p: np.asarray(p, dtype=float))
    return frame
