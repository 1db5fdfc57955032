"""`data/reports/index.html`: everything a person looks at after a run, on one static page.

Why one page: the results are otherwise spread over Markdown leaderboards, PNGs, `dvc plots`,
Great Expectations' Data Docs and MLflow. This page gathers the leaderboards (with their
intervals), the figures, steerability, the knowledge-to-simulation gap and calibration, the
build's counts and exclusions, the validation summary (with a link to Data Docs) and where the
question texts came from. It is static HTML beside the figures it shows (relative links), so
it opens from disk, from a DVC-tracked copy, or from an MLflow artifact folder alike. The page
is the Jinja template `scoring/templates/index.html.j2`.

The page says what it is: its context block names the data source, each dataset's questions
and groups, and the code's git content ids (RunContext, filled by the evaluate stage), and every table is
followed by a legend of its columns (`column_legend`: metrics from the registry, the other
columns from `COLUMNS`). It is a DVC output whose hash dvc.lock records, so it holds nothing
that differs between reruns of the same inputs: no clock time, host or absolute path.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import pandas as pd

from opinionbench.io import write_text
from opinionbench.scoring.registry import shown_in, specs
from opinionbench.tables import OVERALL

if TYPE_CHECKING:
    from opinionbench.scoring.leaderboard import DatasetEvaluation

TEMPLATE = "index.html.j2"  # in scoring/templates/
# The page's leaderboard: what an entry is, its metrics (the registry's page view), then these facts.
PAGE_FACTS = ["failed_rate", "n_questions"]
# Where the ranking's cells are told: the primary score on the cells every ranked entry answered.
SAME_CELLS = ["rep_groups_same", "rep_overall_same", "simbench_groups_same"]
KINDS = {"model": "a model's predictions", "baseline": "a rule with no model (ranked with the models)",
         "oracle": "a baseline that reads the answer (overall-prior: the public's own distribution): a ceiling, not ranked",
         "reference": "humans, not ranked: `groups vs public` = each group's answers taken as a prediction of the "
                      "public's; `other groups` = of each other group's (avg over groups, and the worst)",
         "published": "source column: a run imported from its paper's release (import-predictions), scored by our code"}
# The page's words for every column that is not a metric (the metrics' own columns, intervals and
# same-cell twins are described by the registry, see `column_legend`). A column missing here is
# shown with an empty legend entry, which tests/test_report.py fails on.
COLUMNS = {
    "rank": "1 = best on the same cells (the `_same` column the ranking reads); empty for oracles, "
            "flagged runs and human references, which are listed, not ranked",
    "entry": "model · method · steering; `+T` = temperature-scaled log-probs, scored on the held-out "
             "questions only; `+T in-sample` = scaled by its source on the very questions it is scored on",
    "kind": "what the entry is: model, baseline, oracle or reference (each explained in the list after this one)",
    "source": "ours = predicted here; published = imported from its paper's release, scored by our code",
    "failed_rate": "share of the file's rows that failed (endpoint down, unparsable reply, unaskable question)",
    "n_questions": "questions this entry was scored on (its own full set)",
    "flag": "why a run is not a result (degenerate T: the fitted temperature sits at the search bound, i.e. "
            "the fit asks for a uniform or an argmax distribution); such a run is not ranked",
    "model": "the model (or baseline) name, as in params.yaml `models` / `infer.baselines`",
    "method": "how a distribution is read from the model (logprobs, verbalized, sequence; `+T` = temperature-scaled)",
    "steering": "how the prompt is steered to a group (none, persona, few-shot)",
    "steerability": "representativeness to each group when steered to it (best persona format per group), mean over groups",
    "unsteered": "the same, for the unsteered prompt (mean over the same groups)",
    "groups": "groups the model was steered to",
    "dataset": "the dataset the rows belong to",
    "tv_sequence": "TV to the target of the sequence method (answers sampled one by one: simulation), mean over questions",
    "tv_verbalized": "TV to the target of the verbalized method (the model states the distribution: knowledge), "
                     "mean over questions",
    "k2s_gap": "knowledge-to-simulation gap: TV(sequence)/TV(verbalized) − 1 (> 0: the model knows the "
               "distribution better than it simulates it)",
    "k2s_gap_lo": "lower end of the gap's bootstrap interval over questions",
    "k2s_gap_hi": "upper end of the gap's bootstrap interval over questions",
    "calibrated_by": "who fitted T: held-out = our calibrate (fitted on the calibration questions, scored on the "
                     "others); in-sample = the run's source, on the questions it is scored on",
    "temperature": "the fitted temperature T (probabilities ∝ p^(1/T)); empty when degenerate or not published",
    "temperature_degenerate": "True: T at the search bound (the fit asks for a uniform or an argmax distribution): not a result",
    "heldout_questions": "questions the before/after comparison covers (the held-out ones)",
    "tv_before": "TV of the raw log-probs on those questions (lower is better)",
    "rep_before": "representativeness of the raw log-probs on those questions (higher is better)",
    "tv_after": "TV after temperature scaling, same questions",
    "rep_after": "representativeness after temperature scaling, same questions",
    "what": "the count's meaning",
    "count": "how many",
}
# Marks inside cells.
MARKS = {"–": "no value (the entry has no rows of that kind, or nothing was computed)",
         "[lo, hi] (`_lo`, `_hi`)": "percentile bootstrap interval over questions",
         "↑ / ↓": "higher / lower is better"}


def column_legend(columns: list[str]) -> list[tuple[str, str]]:
    """(column, what it means) for each of `columns`: a metric from its registry spec (its interval,
    same-cell twin and companion too), a ranking count from scoring/ranking.py's naming, else COLUMNS."""
    metrics = {s.name: s for s in specs() if s.rows is not None}
    companions = {s.companion: s for s in metrics.values() if s.companion}
    out = []
    for column in columns:
        base, _, end = column.rpartition("_")
        if column in metrics:
            spec = metrics[column]
            text = f"{spec.label} {spec.arrow}: {spec.description}"
        elif base in metrics and end in ("lo", "hi"):
            text = f"{'lower' if end == 'lo' else 'upper'} end of {base}'s bootstrap interval over questions"
        elif base in metrics and end == "same":
            spec = metrics[base]
            text = f"{spec.label} {spec.arrow} on the same cells (those every ranked entry answered): what `rank` compares"
        elif column in companions:
            text = f"the group behind {companions[column].name}"
        elif column.startswith(("same_questions_", "same_cells_")):
            scope = "groups'" if column.endswith("groups") else "public's"
            text = (f"{'questions' if 'questions' in column else 'cells'} of the {scope} rows every ranked entry answered")
        else:
            text = COLUMNS.get(column, "")
        out.append((column, text))
    return out


def page_columns() -> list[str]:
    """The page's leaderboard columns: entry and kind, each page metric (with its interval where
    the registry says so), then the per-file facts."""
    metrics = [c for spec in shown_in("page")
               for c in [spec.name, *(spec.interval_columns if spec.shown.page_interval else [])]]
    return ["rank", "entry", "kind", "source", *SAME_CELLS, *metrics, *PAGE_FACTS, "flag"]


@dataclass
class RunContext:
    """What the page says about the data the leaderboards were computed on (files may be absent)."""

    build_report: Path | None = None
    validation_summary: Path | None = None
    questions: Path | None = None
    reviews: int = 0
    extra_links: dict[str, Path] = field(default_factory=dict)
    # What the run is: only facts that are the same on every rerun of the same inputs (the page is
    # a DVC output hashed in dvc.lock): no clock time, host or absolute path.
    data_source: str = ""  # e.g. "data.waves_dir = data/sample: the embedded synthetic sample"
    code: str = "not a git checkout"  # git content id of the code, and dirtiness


def _json(path: Path | None) -> dict:
    if path is None or not Path(path).exists():
        return {}
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError:
        return {}


_COUNT_COLUMNS = {"n_questions", "groups", "heldout_questions", "count", "rank"}


def _table(frame: pd.DataFrame, css: str = "", dataset: str = "") -> str:
    attrs = f' data-dataset="{html.escape(dataset)}"' if dataset else ""
    frame = frame.copy()
    for column in _COUNT_COLUMNS & set(frame.columns):  # counts print as counts, not 6.000
        numbers = pd.to_numeric(frame[column], errors="coerce").round()
        frame[column] = numbers.map(lambda v: "–" if pd.isna(v) else str(int(v)))  # no `<NA>` on the page
    body = frame.to_html(index=False, classes=css or None, float_format=lambda v: f"{v:.3f}", na_rep="–", border=0)
    legend = "".join(f"<dt>{html.escape(c)}</dt><dd>{html.escape(text)}</dd>" for c, text in column_legend(list(frame.columns)))
    return body.replace("<table", f"<table{attrs}", 1) + f"\n<dl class='legend columns'>{legend}</dl>"


def _counts(items: dict) -> pd.DataFrame:
    return pd.DataFrame([{"what": k, "count": v} for k, v in items.items()])


def _link(target: Path, out_dir: Path) -> str:
    return os.path.relpath(Path(target).resolve(), Path(out_dir).resolve())


def _data_sections(context: RunContext, out_dir: Path) -> dict:
    """What the page says about the data: build counts, validation, where the texts came from."""
    out: dict = {}
    build = _json(context.build_report)
    if build:
        counts = {"waves built": build.get("waves_built"), "waves not built": len(build.get("waves_failed", {})),
                  "questions": build.get("questions"), "cells (question × group)": build.get("cells"),
                  "labels classed as non-answers": len(build.get("nonsubstantive_labels", []))}
        skipped = build.get("skipped_columns_by_reason") or {}
        out["build"] = {"counts": _table(_counts(counts), "counts"),
                        "skipped": _table(_counts(dict(list(skipped.items())[:15]))) if skipped else ""}
    summary = _json(context.validation_summary)
    if summary:
        counts = {k: summary.get(k) for k in ("questions_built", "questions_validated", "questions_excluded",
                                               "cells_built", "cells_validated", "cells_dropped_low_n_eff",
                                               "expectations", "expectations_failed")}
        docs = summary.get("data_docs")
        reasons = summary.get("questions_excluded_by_reason") or {}
        out["validation"] = {"counts": _table(_counts(counts), "counts"), "docs": _link(Path(docs), out_dir) if docs else "",
                             "reasons": _table(_counts(reasons)) if reasons else ""}
    if context.questions is not None and Path(context.questions).exists():
        questions = pd.read_parquet(context.questions, columns=["text_source"])
        sources = Counter(questions["text_source"].tolist())
        counts = {f"text from the {k}": v for k, v in sources.most_common()} | {"reviewed corrections": context.reviews}
        out["provenance"] = _table(_counts(counts), "counts")
    return out


def _dataset_section(item: DatasetEvaluation, figures: list[Path], out_dir: Path) -> dict:
    board = item.board[[c for c in page_columns() if c in item.board.columns]]
    tables = [(title, _table(table)) for title, table in (
        ("Steerability", item.steerability_summary), ("Knowledge-to-simulation gap", item.k2s),
        ("Calibration (temperature scaling, held-out questions)", item.calibration)) if len(table)]
    from opinionbench.scoring.report import same_cells_note

    return {"name": item.dataset, "n_questions": len(item.asked), "board": _table(board, "leaderboard", item.dataset),
            "tables": tables, "same_cells": same_cells_note(item.board),
            "kinds": KINDS, "in_dataset": int(item.truth.questions["qkey"].nunique()),
            "directory": item.directory.as_posix(), "groups": _groups(item),
            "figures": [(_link(f, out_dir), f.stem) for f in figures if f.suffix == ".png" and f.exists()]}


def _groups(item: DatasetEvaluation) -> list[tuple[str, str]]:
    """(attribute, its groups) the entries were scored against, from the scored rows."""
    pairs = {(a, g) for frame in item.scored.values() for a, g in frame[["attribute", "group"]].itertuples(index=False)
             if a != OVERALL}
    return [(a, ", ".join(sorted(g for b, g in pairs if b == a))) for a in sorted({a for a, _ in pairs})]


def render_index(out_dir: Path, evaluations: list[DatasetEvaluation], artifacts: dict[str, list[Path]],
                 context: RunContext) -> str:
    """The page's HTML (scoring/templates/index.html.j2)."""
    env = jinja2.Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["h"] = html.escape
    source = resources.files("opinionbench.scoring").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    return env.from_string(source).render(
        datasets=[_dataset_section(e, artifacts.get(e.dataset, []), out_dir) for e in evaluations],
        context=context, marks=MARKS,
        **{"build": None, "validation": None, "provenance": None, **_data_sections(context, out_dir)})


def write_index(out_dir: Path, evaluations: list[DatasetEvaluation], artifacts: dict[str, list[Path]],
                context: RunContext) -> Path:
    """Write `out_dir/index.html` and return its path."""
    out_dir = Path(out_dir)
    path = out_dir / "index.html"
    write_text(render_index(out_dir, evaluations, artifacts, context), path)
    return path
