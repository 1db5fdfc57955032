"""What a predictions table cost to make: cells, failures, compute seconds and tokens.

Why not in the predictions file (as it once was, in its parquet metadata): wall time differs on
every run, and a DVC-tracked output that differs on every run can never be reproduced; its hash
in `dvc.lock` would change with each rerun and make every stage downstream stale. A DVC metrics
file is no way out either: even with `cache: false` its md5 is written into `dvc.lock`. So the
cost goes beside the table's resumable parts (`infer.parts_dir`, a cache DVC does not track),
one JSON per predictions table, and MLflow reads it from there (`run_cost`) when evaluate logs
the run. Deleting the cache loses only these numbers, never a result.
"""

from __future__ import annotations

import json
from pathlib import Path

from opinionbench.io import write_json

COST_FILE = "cost.json"
COST_KEYS = ("cells", "failures", "infer_seconds", "infer_tokens")


def cost_path(parts_dir: Path) -> Path:
    """The cost file of the table whose parts are in `parts_dir` (one directory per table)."""
    return Path(parts_dir) / COST_FILE


def write_cost(parts_dir: Path, *, cells: int, failures: int, seconds: float, tokens: int) -> None:
    write_json({"cells": int(cells), "failures": int(failures), "infer_seconds": round(float(seconds), 3),
                "infer_tokens": int(tokens)}, cost_path(parts_dir))


def run_cost(predictions_file: Path, parts_dir: Path) -> dict[str, float]:
    """The cost recorded for `predictions_file` (`<root>/<dataset>/<model>/<method>/<steering>.parquet`,
    raw or temperature-scaled: the same inference) under `parts_dir` (params `infer.parts_dir`);
    {} when none was recorded (baselines, files made elsewhere or before, a cleared cache)."""
    parts = Path(predictions_file).with_suffix("").parts[-4:]
    return read_cost(Path(parts_dir).joinpath(*parts))


def read_cost(parts_dir: Path) -> dict[str, float]:
    """The cost recorded beside the parts in `parts_dir` ({} when none)."""
    try:
        data = json.loads(cost_path(parts_dir).read_text())
    except (OSError, ValueError):
        return {}
    return {k: data[k] for k in COST_KEYS if isinstance(data.get(k), (int, float)) and not isinstance(data.get(k), bool)}
