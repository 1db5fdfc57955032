"""The metrics that describe themselves: one `MetricSpec` per metric, registered by name.

Why one registry: the scored rows, the leaderboard CSV and Markdown, the HTML page (with its
legend), `metrics.json` (DVC) and the MLflow runs all take their columns from here, so adding a
metric is one registration (lm-evaluation-harness's `MetricSpec(compute, aggregate,
higher_is_better)` with `@register_metric`, on the project's `Registry` idiom).

An entry is a per-row formula (`compute(pred, target, ordinal)` on padded `(n, k)` matrices,
see `metrics.pad_rows`: every scored question × group row gets a column `name`), a leaderboard
metric (`rows`: it summarises the row metric `of` over one predictions file's Overall or group
rows with `aggregate`), or both at once (a new formula and its leaderboard column):

    @register_metric("simbench", label="SimBench score", higher_is_better=True, rows="groups",
                     interval=True, description="100·(1 − TV/TV(uniform)), mean over questions")
    def simbench(pred, target, ordinal): ...

Registration order is column order. A metric defined outside this module registers itself in
its own module, named in `METRIC_MODULES` so that every reader of the registry sees it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from opinionbench.registry import Registry
from opinionbench.scoring import metrics

RowFormula = metrics.RowFormula
Rows = Literal["overall", "groups"]
Aggregate = Literal["question_mean", "row_mean", "worst_group", "group_spread", "skill"]
AGGREGATES: dict[str, str] = {
    "question_mean": "mean over questions of each question's mean (the bootstrap's unit)",
    "row_mean": "mean over every scored row",
    "worst_group": "the worst `attribute: group` mean (its group in `companion`)",
    "group_spread": "best minus worst `attribute: group` mean (the best group in `companion`)",
    "skill": "100·(1 − mean(of)/mean(reference)) over questions: a skill score against a reference row metric",
}
# Modules that register more metrics when imported (one line per plug-in module).
METRIC_MODULES: tuple[str, ...] = (
    "opinionbench.scoring.simbench",
)


@dataclass(frozen=True)
class Shown:
    """Where a leaderboard metric is published besides the CSV, which has every metric.

    `markdown`/`page`: its position among the metric columns of the Markdown leaderboard / the
    HTML page (None: not shown; the default puts a new metric after the built-in ones).
    """

    markdown: float | None = math.inf
    page: float | None = math.inf
    page_interval: bool = False  # the page shows its [lo, hi] columns too
    dvc: bool = True  # a key of metrics.json (`dvc metrics show`, `dvc exp show`)
    mlflow: bool = True  # a metric of each MLflow run
    mlflow_interval: bool = True  # ... with its `_lo`/`_hi`, when it has an interval


@dataclass(frozen=True)
class MetricSpec:
    """One metric: what it is called, how it is computed and summarised, which way is better."""

    name: str  # the column everywhere: scored rows, leaderboard CSV, metrics.json, MLflow
    label: str  # a person's name for it (Markdown header, the page's legend)
    description: str  # one line: the formula and its source (the page's legend)
    higher_is_better: bool
    compute: RowFormula | None = None  # per-row formula (pred, target, ordinal) -> (n,)
    of: str | None = None  # the row metric a leaderboard metric summarises (default: itself)
    rows: Rows | None = None  # which rows of a predictions file it summarises; None: per-row only
    aggregate: Aggregate = "question_mean"
    interval: bool = False  # a percentile bootstrap interval over questions (`_lo`, `_hi` columns)
    companion: str | None = None  # a text column naming the group behind the value
    reference: str | None = None  # aggregate `skill`: the row metric of the reference prediction
    shown: Shown = field(default_factory=Shown)

    def __post_init__(self) -> None:
        if self.compute is None and self.rows is None:
            raise ValueError(f"metric {self.name}: give a row formula (compute) or the rows it summarises")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"metric {self.name}: unknown aggregate {self.aggregate!r} (known: {', '.join(AGGREGATES)})")
        if self.interval and self.aggregate not in ("question_mean", "skill"):
            raise ValueError(f"metric {self.name}: a bootstrap interval needs aggregate question_mean or skill")
        if (self.aggregate == "skill") != (self.reference is not None):
            raise ValueError(f"metric {self.name}: aggregate skill and a reference row metric go together")

    @property
    def source(self) -> str:
        """The scored-row column this metric reads."""
        return self.of or self.name

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def interval_columns(self) -> list[str]:
        return [f"{self.name}_lo", f"{self.name}_hi"] if self.interval else []

    @property
    def columns(self) -> list[str]:
        """Its leaderboard columns: the value, its interval, its companion."""
        return [self.name, *self.interval_columns, *([self.companion] if self.companion else [])]


metric_specs: Registry[MetricSpec] = Registry("metric")


def register(spec: MetricSpec) -> MetricSpec:
    """Add `spec` to the registry (a name is registered once)."""
    if spec.name in metric_specs:
        raise ValueError(f"metric {spec.name!r} is already registered")
    if spec.of is not None and (spec.of not in metric_specs or metric_specs.get(spec.of).compute is None):
        raise ValueError(f"metric {spec.name}: {spec.of!r} is not a registered row metric (register it first)")
    return metric_specs.register(spec.name)(spec)


def register_metric(name: str, **fields: Any) -> Callable[[RowFormula], RowFormula]:
    """Decorator: register the decorated `(pred, target, ordinal)` formula as metric `name`."""

    def add(compute: RowFormula) -> RowFormula:
        register(MetricSpec(name=name, compute=compute, **fields))
        return compute

    return add


def specs() -> list[MetricSpec]:
    """Every registered metric, in registration order (plug-in modules imported first)."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    return [metric_specs.get(name) for name in metric_specs.names()]


def row_metrics() -> list[MetricSpec]:
    return [s for s in specs() if s.compute is not None]


def row_formulas() -> dict[str, RowFormula]:
    """name -> per-row formula of every row metric (what `metrics.row_scores` computes)."""
    return {s.name: s.compute for s in row_metrics() if s.compute is not None}


def board_metrics() -> list[MetricSpec]:
    return [s for s in specs() if s.rows is not None]


def board_columns() -> list[str]:
    """The leaderboard's metric columns, in order."""
    return [c for s in board_metrics() for c in s.columns]


def shown_in(view: Literal["markdown", "page"]) -> list[MetricSpec]:
    """The leaderboard metrics a view shows, in its order."""
    chosen = [s for s in board_metrics() if getattr(s.shown, view) is not None]
    return sorted(chosen, key=lambda s: getattr(s.shown, view))


def dvc_keys() -> list[str]:
    return [s.name for s in board_metrics() if s.shown.dvc]


def mlflow_keys() -> list[str]:
    return [c for s in board_metrics() if s.shown.mlflow
            for c in [s.name, *(s.interval_columns if s.shown.mlflow_interval else [])]]


# --- aggregation: a file's scored rows -> its leaderboard numbers ---------------------------------

def question_means(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Each question's mean of `column` (questions weigh alike, however many groups they have)."""
    return rows.groupby("qkey")[column].mean().to_numpy() if len(rows) else np.empty(0)


def with_interval(out: dict, name: str, values: np.ndarray, boot: dict) -> None:
    """`out[name]` = the mean of `values`, `name_lo`/`name_hi` its bootstrap interval (NaNs dropped)."""
    clean = values[~np.isnan(values)]
    out[name] = float(clean.mean()) if clean.size else float("nan")
    out[f"{name}_lo"], out[f"{name}_hi"] = metrics.bootstrap_ci(clean, boot["n_boot"], boot["seed"], boot["confidence"])


def skill_score(spec: MetricSpec, rows: pd.DataFrame, boot: dict) -> dict[str, float]:
    """100·(1 − mean(of)/mean(reference)), both means over questions (each question's rows
    averaged first); the interval resamples questions, keeping each question's pair together."""
    nan = float("nan")
    names = [spec.name, *spec.interval_columns]
    if not len(rows):
        return dict.fromkeys(names, nan)
    pairs = rows.groupby("qkey")[[spec.source, spec.reference]].mean().dropna().to_numpy()
    if not len(pairs) or pairs[:, 1].mean() <= 0:
        return dict.fromkeys(names, nan)
    out = {spec.name: float(100 * (1 - pairs[:, 0].mean() / pairs[:, 1].mean()))}
    if spec.interval:
        means = metrics.bootstrap_means(pairs, boot["n_boot"], boot["seed"])
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = 100 * (1 - means[:, 0] / means[:, 1])
        tail = (1 - boot["confidence"]) / 2 * 100
        finite = scores[np.isfinite(scores)]
        lo, hi = np.percentile(finite, [tail, 100 - tail]) if finite.size else (nan, nan)
        out[f"{spec.name}_lo"], out[f"{spec.name}_hi"] = float(lo), float(hi)
    return out


def cell_means(rows: pd.DataFrame, column: str) -> pd.Series:
    """Mean of `column` per `attribute: group` cell."""
    return rows.assign(cell=rows["attribute"] + ": " + rows["group"]).groupby("cell")[column].mean()


def worst(spec: MetricSpec, values: pd.Series) -> float:
    """The worst of `values` by the direction of `spec`."""
    return float(values.min() if spec.higher_is_better else values.max())


def row_direction(column: str) -> bool:
    """higher_is_better of the registered metric `column` (a scored-row column)."""
    return metric_specs.get(column).higher_is_better


def summarise_rows(spec: MetricSpec, rows: pd.DataFrame, boot: dict) -> dict[str, Any]:
    """The leaderboard columns of `spec` from one predictions file's rows in its scope."""
    out: dict[str, Any] = {}
    column = spec.source
    if spec.aggregate == "skill":
        out |= skill_score(spec, rows, boot)
    elif spec.aggregate == "question_mean":
        values = question_means(rows, column)
        if spec.interval:
            with_interval(out, spec.name, values, boot)
        else:
            clean = values[~np.isnan(values)]
            out[spec.name] = float(clean.mean()) if clean.size else float("nan")
    elif spec.aggregate == "row_mean":
        out[spec.name] = float(rows[column].mean()) if len(rows) else float("nan")
    else:
        by_cell = cell_means(rows, column) if len(rows) else pd.Series(dtype=float)
        present = by_cell.dropna()
        best_first = row_direction(spec.source)  # the groups are ranked by the row metric they are means of
        if spec.aggregate == "worst_group":
            out[spec.name] = float(by_cell.min() if best_first else by_cell.max()) if len(by_cell) else float("nan")
            label = (present.idxmin() if best_first else present.idxmax()) if len(present) else ""
        else:  # group_spread: GlobalOpinionQA's skew, the best group named (negated: lower is better)
            skew = metrics.jensen_shannon_skew(by_cell if best_first else -by_cell)
            out[spec.name], label = skew["skew"], skew["most_similar"]
        if spec.companion:
            out[spec.companion] = str(label)
    return out


# --- the built-in metrics ------------------------------------------------------------------------

@register_metric("tv", label="total variation", higher_is_better=False,
                 description="½·Σ|p−q|: the share of probability mass to move (Meister et al. 2024)")
def _tv(pred: np.ndarray, target: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
    return metrics.total_variation(pred, target)


@register_metric("wasserstein", label="Wasserstein-1", higher_is_better=False,
                 description="W₁ between the distributions placed at the options' ordinal positions")
def _wasserstein(pred: np.ndarray, target: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
    return metrics.wasserstein(pred, target, ordinal)


@register_metric("representativeness", label="representativeness", higher_is_better=True,
                 description="1 − W₁/(ordinal span) (OpinionQA, Santurkar et al. 2023); NaN without a scale")
def _representativeness(pred: np.ndarray, target: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
    return metrics.representativeness(pred, target, ordinal)


@register_metric("js_similarity", label="Jensen–Shannon similarity", higher_is_better=True,
                 description="1 − Jensen–Shannon distance (GlobalOpinionQA)")
def _js_similarity(pred: np.ndarray, target: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
    return metrics.jensen_shannon(pred, target)


for _spec in (
    MetricSpec("rep_overall", "Representativeness (public)", "representativeness to the public (Overall rows), "
               "mean over questions", True, of="representativeness", rows="overall", interval=True,
               shown=Shown(markdown=1, page=3)),
    MetricSpec("tv_overall", "TV to public", "total variation to the public (Overall rows), mean over questions",
               False, of="tv", rows="overall", interval=True, shown=Shown(markdown=4, page=None, mlflow_interval=False)),
    MetricSpec("js_overall", "JS similarity (public)", "Jensen–Shannon similarity to the public, mean over rows",
               True, of="js_similarity", rows="overall", aggregate="row_mean",
               shown=Shown(markdown=None, page=None, dvc=False)),
    MetricSpec("rep_groups", "Representativeness (groups)", "representativeness to each demographic group, "
               "mean over questions", True, of="representativeness", rows="groups", interval=True,
               shown=Shown(markdown=2, page=1, page_interval=True)),
    MetricSpec("tv_groups", "TV to groups", "total variation to each demographic group, mean over questions",
               False, of="tv", rows="groups", interval=True, shown=Shown(markdown=3, page=2)),
    MetricSpec("rep_worst_group", "worst group (rep)", "representativeness to the least represented group",
               True, of="representativeness", rows="groups", aggregate="worst_group", companion="worst_group",
               shown=Shown(markdown=5, page=4)),
    MetricSpec("js_groups", "JS similarity (groups)", "Jensen–Shannon similarity to the groups, mean over rows",
               True, of="js_similarity", rows="groups", aggregate="row_mean", shown=Shown(markdown=None, page=None)),
    MetricSpec("js_skew", "JS skew", "most minus least similar group's JS similarity: 0 = equally close to all "
               "(GlobalOpinionQA)", False, of="js_similarity", rows="groups", aggregate="group_spread",
               companion="most_similar_group", shown=Shown(markdown=None, page=None)),
):
    register(_spec)
