"""The human baseline of the distributional-alignment paper: annotators doing the models' task.

`results/human_annotations/{OQA,NYT}_human_tv_data.json` hold, per steering condition
(`nosteer`, `persona`, `fewshot`), the total variation between each annotator's stated
distribution and the group's real one. They become reference rows of the leaderboards (beside
the method whose capabilities say it states a distribution, as people did), with a bootstrap
interval like every other row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from opinionbench.datasets.common import DatasetImportError, read_json

STEERING = {"nosteer": "none", "persona": "persona", "fewshot": "few-shot"}
HUMAN_COLUMNS = ["steering", "tv", "source_file"]


def human_annotations(root: Path, prefix: str) -> pd.DataFrame | None:
    """Rows (steering, tv, source_file); None when the release has no such file."""
    path = root / "results" / "human_annotations" / f"{prefix}_human_tv_data.json"
    if not path.exists():
        return None
    data = read_json(path)
    rows = []
    for condition, values in data.items():
        if condition not in STEERING or not isinstance(values, list):
            raise DatasetImportError(f"{path}: {condition}: expected one of {list(STEERING)} with a list of TVs")
        rows += [{"steering": STEERING[condition], "tv": float(v), "source_file": path.name} for v in values]
    return pd.DataFrame(rows, columns=HUMAN_COLUMNS)
