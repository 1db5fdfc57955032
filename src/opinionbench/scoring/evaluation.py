"""From predictions files to leaderboard rows: find, join with the human truth, score, summarise.

The join follows docs/architecture.md: a predictions row is keyed like a distributions row
(qkey, attribute, group) with `probs` aligned to the question's options. An *unsteered* model
(steering `none`) answers once per question (its Overall row) and that answer is scored against
the public and against every group — OpinionQA's representativeness of each group; a row the
predictions give for a specific group (e.g. the `overall-prior` baseline's) is used as is.
A *steered* row is scored against the group it was steered to.

Every interval is a percentile bootstrap over questions (each question's rows averaged first),
so a question with many groups weighs no more than one with few.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from opinionbench.elicit import capabilities, k2s_pair, methods
from opinionbench.inference.predictions import BASELINE_METHOD
from opinionbench.scoring import metrics
from opinionbench.scoring import registry as reg
from opinionbench.tables import OVERALL, TableError, read_dataset

if TYPE_CHECKING:
    from opinionbench.elicit.base import Capabilities

UNSTEERED = "none"
KEY = ["qkey", "attribute", "group"]


def method_capabilities(method: str) -> Capabilities | None:
    """What the elicitation method of a predictions file is; None for a baseline or a method this
    checkout does not define (published predictions imported from another benchmark)."""
    return capabilities(method) if method in methods else None


def calibratable(method: str) -> bool:
    """Temperature scaling applies: the method reads its distribution off option log-probs."""
    caps = method_capabilities(method)
    return bool(caps and caps.calibratable)


def is_baseline(method: str) -> bool:
    return method == BASELINE_METHOD


# Baselines that read the answer they are scored on: `overall-prior` predicts the public's own
# distribution, so on the public's rows it *is* the truth (representativeness 1.000). They are
# ceilings, kind `oracle`, kept apart from the baselines and never ranked among the entries.
ORACLE_BASELINES = frozenset({"overall-prior"})
OURS, PUBLISHED = "ours", "published"  # where a predictions file's numbers were made
HELD_OUT, IN_SAMPLE = "held-out", "in-sample"  # who fitted a calibrated file's T: our calibrate / its source


@dataclass(frozen=True)
class PredictionFile:
    """One `<dataset>/<model>/<method>/<steering>.parquet` found under a predictions root.

    `source`: `ours` or `published` (imported by `import-predictions`); `calibrated_by`:
    `held-out` (our `calibrate`) or `in-sample` (the source scaled it on the questions it scores).
    """

    path: Path
    dataset: str
    model: str
    method: str
    steering: str
    calibrated: bool = False
    source: str = OURS
    calibrated_by: str = ""

    @property
    def method_label(self) -> str:
        if not self.calibrated:
            return self.method
        return f"{self.method}+T" + (f" {IN_SAMPLE}" if self.calibrated_by == IN_SAMPLE else "")

    @property
    def label(self) -> str:
        return f"{self.model} · {self.method_label} · {self.steering}"

    @property
    def kind(self) -> str:
        """model | baseline | oracle (a baseline that reads the answer)."""
        if not is_baseline(self.method):
            return "model"
        return "oracle" if self.model in ORACLE_BASELINES else "baseline"


def discover(root: Path, calibrated: bool = False, source: str = OURS) -> list[PredictionFile]:
    """Every predictions file under `root` (layout of `opinionbench.inference.predictions`);
    `source=published` with `calibrated=True`: runs their source temperature-scaled (in-sample)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    by = "" if not calibrated else (IN_SAMPLE if source == PUBLISHED else HELD_OUT)
    for path in sorted(root.glob("*/*/*/*.parquet")):
        dataset, model, method = path.relative_to(root).parts[:3]
        found.append(PredictionFile(path, dataset, model, method, path.stem, calibrated, source, by))
    return found


@dataclass
class Truth:
    """A dataset's two tables, plus what scoring needs precomputed."""

    name: str
    directory: Path
    questions: pd.DataFrame
    distributions: pd.DataFrame
    human_annotations: pd.DataFrame | None = None
    ordinal: dict[str, np.ndarray] = field(default_factory=dict)
    n_options: dict[str, int] = field(default_factory=dict)

    @property
    def has_overall(self) -> bool:
        return bool((self.distributions["attribute"] == OVERALL).any())


def dataset_dir(name: str, datasets_dir: Path, build_dir: Path) -> Path:
    """An imported dataset lives in datasets_dir/<name>; any other name is the main build."""
    imported = Path(datasets_dir) / name
    return imported if (imported / "questions.parquet").exists() else Path(build_dir)


def load_truth(name: str, directory: Path) -> Truth:
    questions, distributions = read_dataset(directory)
    human_path = Path(directory) / "human_annotations.parquet"
    human = pd.read_parquet(human_path) if human_path.exists() else None
    return Truth(
        name=name, directory=Path(directory), questions=questions, distributions=distributions,
        human_annotations=human,
        ordinal={q: np.asarray(o, dtype=float) for q, o in zip(questions["qkey"], questions["ordinal"])},
        n_options={q: len(o) for q, o in zip(questions["qkey"], questions["options"])},
    )


def score_pairs(pairs: pd.DataFrame, truth: Truth, source: str) -> pd.DataFrame:
    """Row metrics for a frame with `qkey`, `pred` (model probs) and `probs` (human probs)."""
    formulas = reg.row_formulas()
    if pairs.empty:
        return pairs.drop(columns=["pred", "probs"], errors="ignore").assign(**{m: [] for m in formulas})
    unknown = sorted(set(pairs["qkey"]) - set(truth.ordinal))
    if unknown:
        raise TableError(f"{source}: {unknown[0]}: not a question of dataset {truth.name} ({truth.directory})")
    widths = pairs["pred"].map(len).to_numpy()
    expected = pairs["qkey"].map(truth.n_options).to_numpy()
    bad = np.flatnonzero(widths != expected)
    if bad.size:
        row = pairs.iloc[bad[0]]
        raise TableError(f"{source}: {row['qkey']}/{row.get('attribute', '')}/{row.get('group', '')}: "
                         f"{widths[bad[0]]} probabilities for {expected[bad[0]]} options")
    scores = metrics.row_scores(pairs["pred"].tolist(), pairs["probs"].tolist(),
                                [truth.ordinal[k] for k in pairs["qkey"].tolist()], formulas)
    return pairs.drop(columns=["pred", "probs"]).assign(**scores)


def pair_predictions(predictions: pd.DataFrame, truth: Truth, steering: str, source: str) -> pd.DataFrame:
    """(qkey, attribute, group, pred, probs): each prediction beside the human distribution it targets."""
    ok = predictions[~predictions["failed"].astype(bool)][[*KEY, "probs"]].rename(columns={"probs": "pred"})
    unknown = sorted(set(ok["qkey"]) - set(truth.n_options))
    if unknown:
        raise TableError(f"{source}: {unknown[0]}: not a question of dataset {truth.name} ({truth.directory})")
    dist = truth.distributions[[*KEY, "probs"]]
    if steering == UNSTEERED:
        targets = dist[dist["qkey"].isin(set(ok["qkey"]))]
        pairs = targets.merge(ok, on=KEY, how="left")
        overall = ok[ok["attribute"] == OVERALL].drop_duplicates("qkey").set_index("qkey")["pred"]
        missing = pairs["pred"].isna()
        pairs.loc[missing, "pred"] = pairs.loc[missing, "qkey"].map(overall)
        pairs = pairs[pairs["pred"].notna()]
    else:
        pairs = ok.merge(dist, on=KEY, how="inner")
    return pairs.reset_index(drop=True)


def score_predictions(predictions: pd.DataFrame, truth: Truth, steering: str, source: str) -> pd.DataFrame:
    """One scored row per (qkey, attribute, group) target the predictions answer."""
    return score_pairs(pair_predictions(predictions, truth, steering, source), truth, source)


def summarise(scored: pd.DataFrame, n_boot: int, seed: int, confidence: float) -> dict:
    """Leaderboard numbers of one scored predictions file: every registered leaderboard metric
    over its Overall or its group rows (NaN where they do not apply)."""
    boot = dict(n_boot=n_boot, seed=seed, confidence=confidence)
    scopes = {"overall": scored[scored["attribute"] == OVERALL], "groups": scored[scored["attribute"] != OVERALL]}
    out: dict = {"n_questions": int(scored["qkey"].nunique()), "n_scored": int(len(scored))}
    for spec in reg.board_metrics():
        out |= reg.summarise_rows(spec, scopes[spec.rows], boot)
    return out


def per_group_scores(scored: pd.DataFrame) -> pd.Series:
    """Mean representativeness per `attribute: group` (the heatmap's column for one entry)."""
    groups = scored[scored["attribute"] != OVERALL]
    return groups.assign(cell=groups["attribute"] + ": " + groups["group"]).groupby("cell")["representativeness"].mean()


def question_sample_digest(qkeys: Iterable[str]) -> str:
    """A short hash of the sorted question keys a run was scored on (its 'question sample')."""
    return hashlib.sha256("\n".join(sorted(set(qkeys))).encode()).hexdigest()[:16]


def human_group_references(truth: Truth, n_boot: int, seed: int, confidence: float) -> list[dict]:
    """OpinionQA's human baselines: groups' own distributions against the public and each other.

    Every leaderboard metric averaged over questions gets its human value: groups against the
    public in the public's columns, groups against the other groups in the groups' columns,
    each as an average and as its worst (by the metric's own direction).
    """
    boot = dict(n_boot=n_boot, seed=seed, confidence=confidence)
    per_question = [s for s in reg.board_metrics() if s.aggregate == "question_mean"]
    public = [s for s in per_question if s.rows == "overall"]
    grouped = [s for s in per_question if s.rows == "groups"]
    rows: list[dict] = []
    dist = truth.distributions
    groups = dist[dist["attribute"] != OVERALL]
    if truth.has_overall and len(groups):
        overall = dist[dist["attribute"] == OVERALL][["qkey", "probs"]].rename(columns={"probs": "target"})
        pairs = groups.merge(overall, on="qkey").rename(columns={"probs": "pred"}).rename(columns={"target": "probs"})
        scored = score_pairs(pairs[[*KEY, "pred", "probs"]], truth, f"{truth.name} groups")
        avg = {"entry": "humans: groups vs public (avg)", "kind": "reference", "steering": UNSTEERED}
        worst = {"entry": "humans: groups vs public (worst)", "kind": "reference", "steering": UNSTEERED}
        for spec in public:
            avg |= reg.summarise_rows(spec, scored, boot)
            worst[spec.name] = reg.worst(spec, reg.cell_means(scored, spec.source))
        for spec in reg.board_metrics():
            if spec.aggregate == "worst_group":
                worst |= reg.summarise_rows(spec, scored, boot)
        rows += [avg, worst]
    if len(groups):
        ref = metrics.group_reference(groups[[*KEY, "probs"]], truth.ordinal, reg.row_formulas())
        if len(ref):
            per_target = ref.groupby(["qkey", "attribute", "group"])
            sources = list(dict.fromkeys(s.source for s in grouped))
            avg = per_target[sources].mean().reset_index()
            worst = per_target.agg(**{c: (c, "min" if reg.row_direction(c) else "max") for c in sources}).reset_index()
            for kind, frame in (("avg", avg), ("worst", worst)):
                row = {"entry": f"humans: other groups ({kind})", "kind": "reference", "steering": UNSTEERED}
                for spec in grouped:
                    row |= reg.summarise_rows(spec, frame, boot)
                rows.append(row)
    human = truth.human_annotations
    if human is not None and len(human):
        method, _ = k2s_pair()  # annotators stated a distribution: the knowledge side of the gap
        for steering, part in human.groupby("steering", sort=False):
            row = {"entry": f"human annotators · {method} · {steering}", "kind": "reference", "steering": steering,
                   "method": method, "n_scored": int(len(part))}
            for spec in grouped:  # the annotations carry per-answer scores (tv), not distributions
                if spec.source in part.columns:
                    values = part[spec.source].to_numpy(dtype=float)
                    if spec.interval:
                        reg.with_interval(row, spec.name, values, boot)
                    else:
                        row[spec.name] = float(np.nanmean(values)) if len(values) else float("nan")
            rows.append(row)
    return rows


def steerability_formats(steerings: Iterable[str]) -> list[str]:
    """The steering formats steerability chooses among: OpinionQA's persona formats.

    OpinionQA's steerability is the best of its persona formats (QA, BIO, PORTRAY) per group, so
    steerings named `persona*` are the candidates; few-shot (the distributional-alignment
    paper's steering) keeps its own leaderboard rows. With no persona format at all, every
    steered format is a candidate, so a few-shot-only run still gets a steerability number.
    """
    steered = sorted({s for s in steerings if s != UNSTEERED})
    persona = [s for s in steered if s.startswith("persona")]
    return persona or steered


def steerability_table(scored_by_file: dict[PredictionFile, pd.DataFrame]) -> pd.DataFrame:
    """Per (dataset, model, method): steerability per group (best persona format) beside the unsteered score."""
    rows = []
    keys = {(f.dataset, f.model, f.method_label) for f in scored_by_file}
    for dataset, model, method in sorted(keys):
        files = {f: s for f, s in scored_by_file.items() if (f.dataset, f.model, f.method_label) == (dataset, model, method)}
        formats = steerability_formats([f.steering for f in files])
        steered = [s.assign(steering=f.steering) for f, s in files.items() if f.steering in formats]
        if not steered:
            continue
        frame = pd.concat(steered, ignore_index=True)
        frame = frame[frame["attribute"] != OVERALL]
        value, best = metrics.steerability(frame)
        unsteered = [s for f, s in files.items() if f.steering == UNSTEERED]
        base = per_group_scores(unsteered[0]) if unsteered else pd.Series(dtype=float)
        for r in best.itertuples(index=False):
            cell = f"{r.attribute}: {r.group}"
            rows.append({"dataset": dataset, "model": model, "method": method,
                         "attribute": r.attribute, "group": r.group, "best_steering": r.best_steering,
                         "steered": float(r.representativeness), "unsteered": float(base.get(cell, np.nan)),
                         "steerability": value})
    return pd.DataFrame(rows, columns=["dataset", "model", "method", "attribute", "group", "best_steering",
                                       "steered", "unsteered", "steerability"])


def knowledge_to_simulation(scored_by_file: dict[PredictionFile, pd.DataFrame], n_boot: int, seed: int,
                            confidence: float) -> pd.DataFrame:
    """TV(sequence)/TV(verbalized) − 1 per (dataset, model, steering), on the rows both methods scored."""
    rows = []
    index = {(f.dataset, f.model, f.method, f.steering): s for f, s in scored_by_file.items() if not f.calibrated}
    knowledge, simulation = k2s_pair()
    for (dataset, model, method, steering), seq in index.items():
        if method != simulation or (dataset, model, knowledge, steering) not in index:
            continue
        verb = index[(dataset, model, knowledge, steering)]
        both = seq[[*KEY, "tv"]].merge(verb[[*KEY, "tv"]], on=KEY, suffixes=("_seq", "_verb"))
        per_q = both.groupby("qkey")[["tv_seq", "tv_verb"]].mean().to_numpy()
        gap = metrics.knowledge_to_simulation_gap(per_q[:, 0], per_q[:, 1]) if len(per_q) else float("nan")
        boot = metrics.bootstrap_means(per_q, n_boot, seed) if len(per_q) else np.full((1, 2), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = boot[:, 0] / boot[:, 1] - 1.0
        tail = (1 - confidence) / 2 * 100
        lo, hi = np.nanpercentile(ratios, [tail, 100 - tail]) if np.isfinite(ratios).any() else (np.nan, np.nan)
        rows.append({"dataset": dataset, "model": model, "steering": steering,
                     f"tv_{simulation}": float(per_q[:, 0].mean()), f"tv_{knowledge}": float(per_q[:, 1].mean()),
                     "k2s_gap": gap, "k2s_gap_lo": float(lo), "k2s_gap_hi": float(hi), "n_questions": int(len(per_q))})
    return pd.DataFrame(rows, columns=["dataset", "model", "steering", f"tv_{simulation}", f"tv_{knowledge}", "k2s_gap",
                                       "k2s_gap_lo", "k2s_gap_hi", "n_questions"])
