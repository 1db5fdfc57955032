"""A picture of a wave's questionnaire quality: where to look first is easier seen than read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from opinionbench.io import atomic_path


def quality_plot(corrected: pd.DataFrame, target: Path, title: str) -> Path:
    """OCR confidence per question (bars, red = routed to review) with the correction's drift."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = corrected.iloc[::-1]
    height = max(2.5, 0.28 * len(frame) + 1.2)
    fig, (ax_conf, ax_drift) = plt.subplots(1, 2, figsize=(9, height), sharey=True,
                                            gridspec_kw={"width_ratios": [2, 1]})
    colors = ["#c0392b" if s == "needs_review" else "#2e86c1" for s in frame["status"]]
    ax_conf.barh(frame["qkey"], frame["confidence"], color=colors)
    ax_conf.set_xlim(0, 100)
    ax_conf.set_xlabel("mean OCR word confidence (red: routed to review)")
    ax_drift.barh(frame["qkey"], frame["drift"].fillna(0.0), color=colors)
    ax_drift.set_xlabel("correction drift (edit distance)")
    fig.suptitle(title)
    fig.tight_layout()
    tmp = atomic_path(Path(target))
    try:
        fig.savefig(tmp, format="png", dpi=100)
        tmp.replace(target)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return Path(target)
