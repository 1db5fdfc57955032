"""Where the release's human distributions (`expected_results`) differ from ours, and why.

Each (dataset, question, group) the release gives a truth for is read with the option labels
its prompt listed and compared with the imported dataset's distribution (which keeps refusals
apart); for OpinionQA questions the audit of the release's counts against the `.sav` files
(`data/audit/group_counts.parquet`, when the audit ran) says where *both* differ from the
microdata (answers the release lost, groups defined otherwise).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from opinionbench.published.common import DatasetCatalog
from opinionbench.scoring import metrics

SAME = 1e-9
COLUMNS = ["dataset", "qkey", "attribute", "group", "status", "reason", "tv_between", "their_refusal_share",
           "labels", "their_probs", "our_probs", "audit_status", "audit_reason", "source_file"]


def _compare(row, catalog: DatasetCatalog) -> dict:
    view = catalog.get(row.dataset)
    ours = None if view is None else view.truth.get((row.qkey, row.attribute, row.group))
    out = {"dataset": row.dataset, "qkey": row.qkey, "attribute": row.attribute, "group": row.group,
           "tv_between": math.nan, "their_refusal_share": math.nan, "labels": row.expected_labels,
           "their_probs": row.expected, "our_probs": None if ours is None else list(ours), "source_file": row.source_file}
    if ours is None:
        return {**out, "status": "no_truth_of_ours", "reason": "the imported dataset has no distribution for this group"}
    labels, expected = row.expected_labels, row.expected
    if labels is None or expected is None or len(labels) != len(expected):
        return {**out, "status": "labels_unknown", "reason": "the release's letters cannot be read as options here"}
    options, refusals = view.options[row.qkey], set(view.refusals.get(row.qkey, []))
    index = {o: i for i, o in enumerate(options)}
    theirs, refused = np.zeros(len(options)), 0.0
    for label, value in zip(labels, expected):
        if label in index:
            theirs[index[label]] += value
        elif label in refusals:
            refused += value
        else:
            return {**out, "status": "option_not_in_dataset", "reason": f"{label!r} is not an option of ours"}
    total = theirs.sum() + refused
    if theirs.sum() <= 0:
        return {**out, "status": "labels_unknown", "reason": "their truth has no mass on our options"}
    tv = float(metrics.total_variation(theirs / theirs.sum(), ours))
    out.update(tv_between=tv, their_refusal_share=refused / total if total else math.nan)
    if tv > SAME:
        return {**out, "status": "distribution_differs", "reason": f"TV {tv:.4f} between the two truths"}
    if refused > 0:
        return {**out, "status": "refusal_counted_as_answer",
                "reason": f"their truth gives {refused / total:.3f} to a refusal option; ours leaves refusals out"}
    return {**out, "status": "same", "reason": ""}


def truth_differences(scored: pd.DataFrame, catalog: DatasetCatalog, audit: pd.DataFrame | None = None
                      ) -> tuple[pd.DataFrame, dict]:
    """(every cell whose truth differs from ours, or the audit flags; counts by status)."""
    cells = scored[scored["expected"].notna()].drop_duplicates(["dataset", "release_key", "attribute_dir", "group_file"])
    frame = pd.DataFrame([_compare(r, catalog) for r in cells.itertuples(index=False)])
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS), {}
    frame = frame.drop_duplicates(["dataset", "qkey", "attribute", "group"])
    frame["audit_status"], frame["audit_reason"] = None, None
    if audit is not None and not audit.empty:
        flags = audit.drop_duplicates(["qkey", "attribute", "group"]).set_index(["qkey", "attribute", "group"])
        keys = list(zip(frame["qkey"], frame["attribute"], frame["group"]))
        frame["audit_status"] = [flags["status"].get(k) for k in keys]
        frame["audit_reason"] = [flags["reason"].get(k) for k in keys]
    summary = {"cells": len(frame), "by_status": frame["status"].value_counts().to_dict(),
               "by_dataset_status": {f"{d}:{s}": int(n) for (d, s), n in
                                     frame.groupby(["dataset", "status"]).size().items()}}
    if frame["audit_status"].notna().any():
        summary["audit_by_status"] = frame["audit_status"].value_counts().to_dict()
    flagged = (frame["status"] != "same") | (frame["audit_status"].notna() & (frame["audit_status"] != "matched"))
    return frame.loc[flagged, COLUMNS].reset_index(drop=True), summary
