"""`data/reports/index.html`: everything a person looks at after a run, on one static page.

Why one page: the results are otherwise spread over Markdown leaderboards, PNGs, `dvc plots`,
Great Expectations' Data Docs and MLflow. This page gathers the leaderboards (with their
intervals), the figures, steerability, the knowledge-to-simulation gap and calibration, the
build's counts and exclusions, the validation summary (with a link to Data Docs) and where the
question texts came from. It is static HTML beside the figures it shows (relative links), so
it opens from disk, from a DVC-tracked copy, or from an MLflow artifact folder alike.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from opinionbench.io import write_text

if TYPE_CHECKING:
    from opinionbench.scoring.leaderboard import DatasetEvaluation

BOARD_COLUMNS = ["entry", "kind", "rep_groups", "rep_groups_lo", "rep_groups_hi", "tv_groups", "rep_overall",
                 "rep_worst_group", "failed_rate", "n_questions"]
_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.85rem}th,td{border:1px solid #ccc;padding:.25rem .5rem}
th{background:#f3f3f3}td{text-align:right}td:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
section{margin-bottom:2.5rem}.note{color:#666;font-size:.85rem}"""
# Tells a browser test (and a person with devtools) that every figure really loaded.
_SCRIPT = """window.addEventListener('load', () => { const imgs = Array.from(document.images);
document.body.dataset.imagesLoaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length + '/' + imgs.length; });"""


@dataclass
class RunContext:
    """What the page says about the data the leaderboards were computed on (files may be absent)."""

    build_report: Path | None = None
    validation_summary: Path | None = None
    questions: Path | None = None
    reviews: int = 0
    extra_links: dict[str, Path] = field(default_factory=dict)


def _json(path: Path | None) -> dict:
    if path is None or not Path(path).exists():
        return {}
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError:
        return {}


_COUNT_COLUMNS = {"n_questions", "groups", "heldout_questions", "count"}


def _table(frame: pd.DataFrame, css: str = "", dataset: str = "") -> str:
    attrs = f' data-dataset="{html.escape(dataset)}"' if dataset else ""
    frame = frame.copy()
    for column in _COUNT_COLUMNS & set(frame.columns):  # counts print as counts, not 6.000
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    body = frame.to_html(index=False, classes=css or None, float_format=lambda v: f"{v:.3f}", na_rep="–", border=0)
    return body.replace("<table", f"<table{attrs}", 1)


def _counts(items: dict) -> pd.DataFrame:
    return pd.DataFrame([{"what": k, "count": v} for k, v in items.items()])


def _link(target: Path, out_dir: Path) -> str:
    return html.escape(os.path.relpath(Path(target).resolve(), Path(out_dir).resolve()))


def _data_sections(context: RunContext, out_dir: Path) -> list[str]:
    parts = []
    build = _json(context.build_report)
    if build:
        counts = {"waves built": build.get("waves_built"), "waves not built": len(build.get("waves_failed", {})),
                  "questions": build.get("questions"), "cells (question × group)": build.get("cells"),
                  "labels classed as non-answers": len(build.get("nonsubstantive_labels", []))}
        parts.append("<section id='build'><h2>Dataset build</h2>" + _table(_counts(counts), "counts"))
        skipped = build.get("skipped_columns_by_reason") or {}
        if skipped:
            parts.append("<h3>Columns not taken as questions, by reason</h3>" + _table(_counts(dict(list(skipped.items())[:15]))))
        parts.append("</section>")
    summary = _json(context.validation_summary)
    if summary:
        counts = {k: summary.get(k) for k in ("questions_built", "questions_validated", "questions_excluded",
                                               "cells_built", "cells_validated", "cells_dropped_low_n_eff",
                                               "expectations", "expectations_failed")}
        docs = summary.get("data_docs")
        link = f"<p><a href='{_link(Path(docs), out_dir)}'>Great Expectations Data Docs</a></p>" if docs else ""
        reasons = summary.get("questions_excluded_by_reason") or {}
        parts.append("<section id='validation'><h2>Validation</h2>" + _table(_counts(counts), "counts") + link
                     + (("<h3>Questions excluded, by reason</h3>" + _table(_counts(reasons))) if reasons else "")
                     + "</section>")
    if context.questions is not None and Path(context.questions).exists():
        questions = pd.read_parquet(context.questions, columns=["text_source"])
        sources = Counter(questions["text_source"].tolist())
        counts = {f"text from the {k}": v for k, v in sources.most_common()} | {"reviewed corrections": context.reviews}
        parts.append("<section id='provenance'><h2>Where the question texts came from</h2>" + _table(_counts(counts), "counts")
                     + "<p class='note'><code>opinionbench provenance QKEY</code> shows one question's whole chain; "
                     "<code>opinionbench review</code> the questions most in need of a check.</p></section>")
    return parts


def _dataset_section(item: DatasetEvaluation, figures: list[Path], out_dir: Path) -> str:
    board = item.board[[c for c in BOARD_COLUMNS if c in item.board.columns]]
    parts = [f"<section id='dataset-{html.escape(item.dataset)}'><h2>Leaderboard: {html.escape(item.dataset)}</h2>",
             f"<p class='note'>{len(item.asked)} questions; representativeness = 1 − Wasserstein distance "
             "(OpinionQA), TV = total variation; [lo, hi] = bootstrap interval over questions.</p>",
             _table(board, "leaderboard", item.dataset)]
    for title, table in (("Steerability", item.steerability_summary), ("Knowledge-to-simulation gap", item.k2s),
                         ("Calibration (temperature scaling, held-out questions)", item.calibration)):
        if len(table):
            parts.append(f"<h3>{html.escape(title)}</h3>" + _table(table))
    for figure in figures:
        if figure.suffix == ".png" and figure.exists():
            parts.append(f"<p><img src='{_link(figure, out_dir)}' alt='{html.escape(figure.stem)}'></p>")
    parts.append("</section>")
    return "\n".join(parts)


def write_index(out_dir: Path, evaluations: list[DatasetEvaluation], artifacts: dict[str, list[Path]],
                context: RunContext) -> Path:
    """Write `out_dir/index.html` and return its path."""
    out_dir = Path(out_dir)
    nav = " · ".join(f"<a href='#dataset-{html.escape(e.dataset)}'>{html.escape(e.dataset)}</a>" for e in evaluations)
    body = [f"<h1>opinionbench results</h1><p>Datasets: {nav or 'none evaluated yet'}</p>",
            *(_dataset_section(e, artifacts.get(e.dataset, []), out_dir) for e in evaluations),
            *_data_sections(context, out_dir)]
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>opinionbench results</title>"
            f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    path = out_dir / "index.html"
    write_text(page, path)
    return path
