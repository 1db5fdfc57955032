"""Writing the reproduced paper tables (`published.paper_dir`) and their summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from opinionbench.io import write_atomic, write_json
from opinionbench.published import PublishedParams
from opinionbench.published.common import DatasetCatalog
from opinionbench.published.paper import (
    TOLERANCE, alignment_table, k2s_table, per_task_table, reference_rows, score_cells,
)
from opinionbench.published.truths import truth_differences

FILES = {"main": "distributional_alignment.csv", "all": "distributional_alignment_all.csv",
         "k2s": "k2s_gap.csv", "truths": "truth_differences.csv", "summary": "summary.json"}


def _csv(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))


def _listed(values: object) -> list | None:
    """A list cell as plain JSON-like text in the CSV (labels, or probabilities to 6 decimals)."""
    if values is None:
        return None
    return [v if isinstance(v, str) else round(float(v), 6) for v in values]


def write_paper_tables(root: Path, cells: pd.DataFrame, catalog: DatasetCatalog, params: PublishedParams,
                       audit: pd.DataFrame | None = None) -> dict:
    out = Path(params.paper_dir)
    scored = score_cells(cells, catalog, Path(root))
    references = reference_rows(scored, catalog)
    boot = {"n_boot": params.bootstrap, "seed": params.seed, "confidence": params.confidence}
    main = alignment_table(scored, references, Path(root), **boot)
    every = per_task_table(scored, references, Path(root), **boot)
    k2s = k2s_table(main, Path(root))
    truths, truth_summary = truth_differences(scored, catalog, audit)
    for frame, name in ((main, "main"), (every, "all"), (k2s, "k2s")):
        _csv(frame, out / FILES[name])
    shown = truths.assign(**{c: truths[c].map(_listed) for c in ("labels", "their_probs", "our_probs")})
    _csv(shown, out / FILES["truths"])
    compared = pd.concat([main[["status"]], every[["status"]], k2s[["status"]]])
    summary = {
        "tolerance": TOLERANCE,
        "rows_compared": int(compared["status"].isin(["matches", "differs"]).sum()),
        "rows_matching": int((compared["status"] == "matches").sum()),
        "rows_differing": int((compared["status"] == "differs").sum()),
        "rows_without_release_outputs": int((compared["status"] == "published, but the release has no outputs for it").sum()),
        "max_abs_difference": float(pd.concat([main["difference"], every["difference"], k2s["difference"]]).abs().max()),
        "truth_differences": truth_summary,
        "files": {k: v for k, v in FILES.items()},
    }
    write_json(summary, out / FILES["summary"])
    return summary
