"""What people read and look at: leaderboards (CSV + Markdown), DVC metrics/plots files, PNG figures.

Figures are drawn with matplotlib's Agg backend (no display needed). Every figure states its
metric, direction ("higher is better") and interval in its title or axis, so a PNG pasted into
a paper or a PR is readable on its own.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from opinionbench.elicit import k2s_pair  # noqa: E402
from opinionbench.io import atomic_path, write_json, write_text  # noqa: E402
from opinionbench.scoring.registry import MetricSpec, dvc_keys, shown_in  # noqa: E402

if TYPE_CHECKING:
    from opinionbench.scoring.leaderboard import DatasetEvaluation

KIND_COLORS = {"model": "#4c72b0", "baseline": "#dd8452", "oracle": "#55a868", "reference": "#9e9e9e"}
LEGEND = {"model": "model", "baseline": "baseline", "oracle": "oracle (reads the answer: a ceiling)",
          "reference": "human reference"}
# Per-file facts of the leaderboard (not metrics) that metrics.json carries after the metrics.
DVC_FACTS = ["failed_rate", "temperature"]


def metric_keys() -> list[str]:
    """The keys of each entry in metrics.json: the registry's DVC metrics, then the facts."""
    return [*dvc_keys(), *DVC_FACTS]


def _cell(row: pd.Series, column: str) -> str:
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    lo, hi = row.get(f"{column}_lo"), row.get(f"{column}_hi")
    if lo is None or hi is None or any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
        return f"{value:.3f}"
    return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"


def _markdown_column(spec: MetricSpec, frame: pd.DataFrame) -> tuple[str, list[str]]:
    """(header, cells) of a metric: `value [lo, hi]` under `label ↑`, or `group (value)` under its label."""
    if spec.companion:
        return spec.label, ["–" if pd.isna(r[spec.name]) else f"{r[spec.companion]} ({r[spec.name]:.3f})"
                            for _, r in frame.iterrows()]
    return f"{spec.label} {spec.arrow}", [_cell(r, spec.name) for _, r in frame.iterrows()]


def _optional(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column] if column in frame else pd.Series([None] * len(frame), index=frame.index)


def _kind(row: pd.Series) -> str:
    """kind, with `published` for imported runs and the flag of a run that is not a result."""
    text = str(row["kind"]) + (" (published)" if row.get("source") == "published" else "")
    return text + (" ⚠ degenerate T" if isinstance(row.get("flag"), str) and row.get("flag") else "")


def same_cells_note(frame: pd.DataFrame) -> str:
    """Which cells the ranking compares: how many questions and cells every ranked entry answered."""
    parts = []
    for scope, name in (("groups", "group"), ("overall", "public")):
        q, c = _optional(frame, f"same_questions_{scope}").dropna(), _optional(frame, f"same_cells_{scope}").dropna()
        if len(c) and int(c.iloc[0]):
            parts.append(f"{int(q.iloc[0])} questions / {int(c.iloc[0])} {name} cells")
    return ("Ranked (`rank`) on the cells every ranked entry answered: " + "; ".join(parts) + ". "
            if parts else "No cell is answered by every ranked entry: `rank` is empty. ")


def leaderboard_markdown(dataset: str, frame: pd.DataFrame, confidence: float, extra: list[tuple[str, pd.DataFrame]]) -> str:
    rank_column = next((f"{n}_same" for n in ("rep_groups", "rep_overall", "simbench_groups", "tv_groups")
                        if f"{n}_same" in frame and frame[f"{n}_same"].notna().any()), None)
    table = pd.DataFrame({
        "rank": _optional(frame, "rank").map(lambda v: "–" if pd.isna(v) else str(int(v))),
        "entry": frame["entry"],
        "kind": frame.apply(_kind, axis=1) if len(frame) else frame["kind"],
        **({f"{rank_column[:-5]} (same cells)": frame[rank_column].map(lambda v: "–" if pd.isna(v) else f"{v:.3f}")}
           if rank_column else {}),
        "questions": frame["n_questions"].map(lambda v: "–" if pd.isna(v) else str(int(v))),
        **dict(_markdown_column(spec, frame) for spec in shown_in("markdown")),
        "T": frame["temperature"].map(lambda v: "–" if pd.isna(v) else f"{v:.2f}"),
    })
    parts = [
        f"# Leaderboard: {dataset}\n",
        f"Point estimates with {confidence:.0%} bootstrap intervals over questions. Representativeness is "
        "1 − W₁/(ordinal span) (OpinionQA; higher is better); TV is total variation (lower is better). "
        "`+T` = temperature-scaled log-probs, scored on the held-out questions only; `+T in-sample` = "
        "scaled by its source on the questions it is scored on. " + same_cells_note(frame)
        + "The other columns are each entry's own score on every cell it answered. `oracle` = a baseline "
        "that reads the answer (a ceiling, not ranked); `(published)` = a run imported from its paper's release.\n",
        table.to_markdown(index=False),
    ]
    for title, extra_frame in extra:
        if len(extra_frame):
            parts += [f"\n## {title}\n", extra_frame.to_markdown(index=False, floatfmt=".3f")]
    return "\n".join(parts) + "\n"


def write_leaderboard(directory: Path, dataset: str, frame: pd.DataFrame, confidence: float,
                      extra: list[tuple[str, pd.DataFrame]]) -> list[Path]:
    csv, md = directory / f"{dataset}.csv", directory / f"{dataset}.md"
    write_text(frame.to_csv(index=False), csv)
    write_text(leaderboard_markdown(dataset, frame, confidence, extra), md)
    return [csv, md]


def write_dataset_report(out_dir: Path, result: DatasetEvaluation, confidence: float) -> list[Path]:
    """A dataset's leaderboard (CSV + Markdown), its side tables (CSV) and figures (PNG), written
    under `out_dir/{leaderboards,figures}`; returns every file written, leaderboard CSV and Markdown first."""
    dataset, board = result.dataset, result.board
    extra = [("Steerability (OpinionQA): best persona format per group vs unsteered, same groups",
              result.steerability_summary),
             ("Steerability per group (best persona format)", result.steerability),
             ("Knowledge-to-simulation gap: TV({1})/TV({0}) − 1".format(*k2s_pair()), result.k2s),
             ("Temperature scaling on held-out questions (before → after)", result.calibration)]
    written = write_leaderboard(out_dir / "leaderboards", dataset, board, confidence, extra)
    for name, table in (("steerability", result.steerability), ("k2s_gap", result.k2s),
                        ("calibration", result.calibration)):
        if len(table):
            path = out_dir / "leaderboards" / f"{dataset}_{name}.csv"
            table.to_csv(path, index=False)
            written.append(path)
    figures = out_dir / "figures"
    drawn = [leaderboard_figure(dataset, board, confidence, figures / f"{dataset}_leaderboard.png")]
    if not result.group_heatmap.empty:
        drawn.append(heatmap_figure(dataset, result.group_heatmap.sort_index(), figures / f"{dataset}_group_heatmap.png"))
    if result.curves:
        drawn.append(reliability_figure(dataset, result.curves, figures / f"{dataset}_reliability.png"))
    return written + drawn


def leaderboards_index(leaderboards: dict[str, pd.DataFrame]) -> str:
    """The leaderboards folder's README.md: one link per dataset."""
    lines = ["# Leaderboards\n"] + [f"- [{d}]({d}.md): {len(b)} rows" for d, b in leaderboards.items()]
    return "\n".join(lines) + "\n"


def metric_key(entry: str) -> str:
    """A leaderboard entry as a column name `dvc exp show` prints readably:
    `smollm2 · logprobs+T · none` → `smollm2_logprobs_T_none` (no spaces, dots or `·`)."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", entry).strip("_")


def dvc_metrics(leaderboards: dict[str, pd.DataFrame]) -> dict:
    """{dataset: {entry key: {metric: value}}} with NaN left out, for `dvc metrics show/diff` and
    `dvc exp show` (columns `<dataset>.<entry key>.<metric>`)."""
    out: dict = {}
    keys = metric_keys()
    for dataset, frame in leaderboards.items():
        for _, row in frame.iterrows():
            values = {k: round(float(row[k]), 6) for k in keys
                      if k in row and isinstance(row[k], (int, float, np.floating)) and not pd.isna(row[k])}
            if values:
                out.setdefault(dataset, {})[metric_key(str(row["entry"]))] = values
    return out


def group_scores_csv(evaluations: list[DatasetEvaluation]) -> pd.DataFrame:
    """Per-group representativeness of each unsteered entry (the heatmap's data), long format,
    so `dvc plots diff` can overlay experiments."""
    rows = []
    for item in evaluations:
        table = item.group_heatmap
        for cell, values in table.iterrows():
            for entry, value in values.items():
                if not pd.isna(value):
                    rows.append({"group": f"{item.dataset} | {cell}", "entry": str(entry),
                                 "representativeness": round(float(value), 6)})
    return pd.DataFrame(rows, columns=["group", "entry", "representativeness"])


def reliability_csv(evaluations: list[DatasetEvaluation]) -> pd.DataFrame:
    """The reliability diagram's points (predicted vs observed option share, before/after
    temperature scaling) per (dataset, model, steering), for `dvc plots`."""
    rows = []
    for item in evaluations:
        for label, (before, after, _temperature) in item.curves.items():
            for stage, frame in (("raw", before), ("scaled", after)):
                for r in frame.itertuples(index=False):
                    rows.append({"curve": f"{item.dataset} | {label} | {stage}", "predicted": round(float(r.predicted), 6),
                                 "observed": round(float(r.observed), 6)})
    return pd.DataFrame(rows, columns=["curve", "predicted", "observed"])


def write_dvc_files(out_dir: Path, leaderboards: dict[str, pd.DataFrame],
                    evaluations: list[DatasetEvaluation] | None = None) -> None:
    write_json(dvc_metrics(leaderboards), out_dir / "metrics.json")
    evaluations = evaluations or []
    write_text(group_scores_csv(evaluations).to_csv(index=False), out_dir / "plots" / "groups.csv")
    write_text(reliability_csv(evaluations).to_csv(index=False), out_dir / "plots" / "reliability.csv")
    rows = []
    for dataset, frame in leaderboards.items():
        for _, row in frame.iterrows():
            score = row["rep_groups"] if not pd.isna(row["rep_groups"]) else row["rep_overall"]
            if not pd.isna(score):
                rows.append({"entry": f"{dataset} | {row['entry']}", "representativeness": round(float(score), 6),
                             "tv_groups": None if pd.isna(row["tv_groups"]) else round(float(row["tv_groups"]), 6)})
    plots = out_dir / "plots"
    write_text(pd.DataFrame(rows, columns=["entry", "representativeness", "tv_groups"]).to_csv(index=False),
               plots / "leaderboard.csv")


def _save(fig: plt.Figure, path: Path) -> Path:
    tmp = atomic_path(path)
    try:
        fig.savefig(tmp, format="png", dpi=130)  # layout done by tight_layout: no second draw
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def _plain(labels) -> list[str]:
    """Tick labels as literal text: a "$30,000-$50,000" group must not turn into mathtext."""
    return [str(label).replace("$", r"\$") for label in labels]


def _bar_panel(ax: plt.Axes, frame: pd.DataFrame, column: str, title: str, xlabel: str) -> None:
    part = frame[frame[column].notna()]
    colors = [KIND_COLORS.get(k, "#dd8452") for k in part["kind"]]
    y = np.arange(len(part))[::-1]
    lo = (part[column] - part[f"{column}_lo"]).clip(lower=0).fillna(0) if f"{column}_lo" in part else None
    hi = (part[f"{column}_hi"] - part[column]).clip(lower=0).fillna(0) if f"{column}_hi" in part else None
    hatches = ["//" if s == "published" else "" for s in _optional(part, "source")]
    bars = ax.barh(y, part[column], color=colors, xerr=None if lo is None else [lo, hi], capsize=3, ecolor="black")
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    ax.set_yticks(y, _plain(part["entry"]), fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    if len(part) == 0:
        ax.text(0.5, 0.5, "no entries", ha="center", va="center", transform=ax.transAxes)


def leaderboard_figure(dataset: str, frame: pd.DataFrame, confidence: float, path: Path) -> Path:
    panels = [(c, t, x) for c, t, x in (
        ("rep_overall", "Representativeness to the public (unsteered)", "representativeness ↑"),
        ("rep_groups", "Representativeness to groups", "representativeness ↑"),
        ("tv_groups", "Total variation to groups", "TV ↓"),
    ) if frame[c].notna().any()]
    panels = panels or [("rep_groups", "Representativeness to groups", "representativeness ↑")]
    height = max(2.5, 0.32 * len(frame) + 1.2)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), height), squeeze=False)
    for ax, (column, title, xlabel) in zip(axes[0], panels):
        _bar_panel(ax, frame, column, title, xlabel)
    fig.suptitle(f"{dataset}: leaderboard (error bars: {confidence:.0%} bootstrap intervals over questions)",
                 fontsize=11)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=KIND_COLORS[k], label=LEGEND[k]) for k in KIND_COLORS]
               + [Patch(facecolor="white", edgecolor="black", hatch="//", label="imported (published run)")],
               loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, path)


def heatmap_figure(dataset: str, table: pd.DataFrame, path: Path) -> Path:
    """Representativeness by demographic group (rows) × model entry (columns), as in OpinionQA."""
    n_rows, n_cols = table.shape
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * n_cols + 3.2), max(3.0, 0.26 * n_rows + 1.6)))
    data = table.to_numpy(dtype=float)
    finite = data[np.isfinite(data)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = ax.imshow(data, aspect="auto", cmap="viridis", vmin=vmin, vmax=max(vmax, vmin + 1e-6))
    ax.set_xticks(range(n_cols), _plain(table.columns), rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(n_rows), _plain(table.index), fontsize=7)
    if n_rows * n_cols <= 400:
        mid = (vmin + vmax) / 2
        for i in range(n_rows):
            for j in range(n_cols):
                if np.isfinite(data[i, j]):
                    ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if data[i, j] < mid else "black")
    fig.colorbar(image, ax=ax, label="representativeness ↑")
    ax.set_title(f"{dataset}: how representative each unsteered model is of each group's opinions", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _temperature_label(temperature: float) -> str:
    """Legend text; a T at the top of the search range means "as flat as possible", not a real fit."""
    from opinionbench.scoring.calibrate import LOG_T_BOUNDS

    if math.isfinite(temperature) and math.log(temperature) >= LOG_T_BOUNDS[1] - 1e-3:
        return f"scaled (T={temperature:.0f}, search bound: ≈ uniform)"
    return f"scaled (T={temperature:.2f})"


def reliability_figure(dataset: str, curves: dict[str, tuple[pd.DataFrame, pd.DataFrame, float]], path: Path) -> Path:
    """One panel per (model, steering): predicted vs human option shares, before and after scaling."""
    n = max(1, len(curves))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False)
    for ax, (label, (before, after, temperature)) in zip(axes[0], curves.items()):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
        ax.plot(before["predicted"], before["observed"], "o-", color="#c44e52", label="raw log-probs")
        ax.plot(after["predicted"], after["observed"], "s-", color="#4c72b0", label=_temperature_label(temperature))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted option probability")
        ax.set_ylabel("human share of that option")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{dataset}: reliability on held-out questions, before/after temperature scaling "
                 "(binned option probabilities vs human shares)", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)
