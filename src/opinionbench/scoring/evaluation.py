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

import numpy as np
import pandas as pd

from opinionbench.scoring import metrics
from opinionbench.tables import OVERALL, TableError, read_dataset

UNSTEERED = "none"
ROW_METRICS = ["tv", "wasserstein", "representativeness", "js_similarity"]
KEY = ["qkey", "attribute", "group"]


@dataclass(frozen=True)
class PredictionFile:
    """One `<dataset>/<model>/<method>/<steering>.parquet` found under a predictions root."""

    path: Path
    dataset: str
    model: str
    method: str
    steering: str
    calibrated: bool = False

    @property
    def label(self) -> str:
        method = f"{self.method}+T" if self.calibrated else self.method
        return f"{self.model} · {method} · {self.steering}"


def discover(root: Path, calibrated: bool = False) -> list[PredictionFile]:
    """Every predictions file under `root` (layout of `opinionbench.inference.predictions`)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.glob("*/*/*/*.parquet")):
        dataset, model, method = path.relative_to(root).parts[:3]
        found.append(PredictionFile(path, dataset, model, method, path.stem, calibrated))
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
    if pairs.empty:
        return pairs.drop(columns=["pred", "probs"], errors="ignore").assign(**{m: [] for m in ROW_METRICS})
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
                                [truth.ordinal[k] for k in pairs["qkey"].tolist()])
    return pairs.drop(columns=["pred", "probs"]).assign(**{m: scores[m] for m in ROW_METRICS})


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


def _question_means(scored: pd.DataFrame, column: str) -> np.ndarray:
    return scored.groupby("qkey")[column].mean().to_numpy() if len(scored) else np.empty(0)


def _with_ci(out: dict, name: str, values: np.ndarray, n_boot: int, seed: int, confidence: float) -> None:
    clean = values[~np.isnan(values)]
    out[name] = float(clean.mean()) if clean.size else float("nan")
    out[f"{name}_lo"], out[f"{name}_hi"] = metrics.bootstrap_ci(clean, n_boot, seed, confidence)


def summarise(scored: pd.DataFrame, n_boot: int, seed: int, confidence: float) -> dict:
    """Leaderboard numbers of one scored predictions file (NaN where they do not apply)."""
    overall = scored[scored["attribute"] == OVERALL]
    groups = scored[scored["attribute"] != OVERALL]
    out: dict = {"n_questions": int(scored["qkey"].nunique()), "n_scored": int(len(scored))}
    _with_ci(out, "rep_overall", _question_means(overall, "representativeness"), n_boot, seed, confidence)
    _with_ci(out, "tv_overall", _question_means(overall, "tv"), n_boot, seed, confidence)
    out["js_overall"] = float(overall["js_similarity"].mean()) if len(overall) else float("nan")
    _with_ci(out, "rep_groups", _question_means(groups, "representativeness"), n_boot, seed, confidence)
    _with_ci(out, "tv_groups", _question_means(groups, "tv"), n_boot, seed, confidence)
    per_group = groups.assign(cell=groups["attribute"] + ": " + groups["group"]).groupby("cell")
    rep_by_group = per_group["representativeness"].mean()
    out["rep_worst_group"] = float(rep_by_group.min()) if len(rep_by_group) else float("nan")
    out["worst_group"] = str(rep_by_group.idxmin()) if len(rep_by_group.dropna()) else ""
    out["js_groups"] = float(groups["js_similarity"].mean()) if len(groups) else float("nan")
    skew = metrics.jensen_shannon_skew(per_group["js_similarity"].mean() if len(groups) else pd.Series(dtype=float))
    out["js_skew"], out["most_similar_group"] = skew["skew"], skew["most_similar"]
    return out


def per_group_scores(scored: pd.DataFrame) -> pd.Series:
    """Mean representativeness per `attribute: group` (the heatmap's column for one entry)."""
    groups = scored[scored["attribute"] != OVERALL]
    return groups.assign(cell=groups["attribute"] + ": " + groups["group"]).groupby("cell")["representativeness"].mean()


def question_sample_digest(qkeys: Iterable[str]) -> str:
    """A short hash of the sorted question keys a run was scored on (its 'question sample')."""
    return hashlib.sha256("\n".join(sorted(set(qkeys))).encode()).hexdigest()[:16]


def human_group_references(truth: Truth, n_boot: int, seed: int, confidence: float) -> list[dict]:
    """OpinionQA's human baselines: groups' own distributions against the public and each other."""
    rows: list[dict] = []
    dist = truth.distributions
    groups = dist[dist["attribute"] != OVERALL]
    if truth.has_overall and len(groups):
        overall = dist[dist["attribute"] == OVERALL][["qkey", "probs"]].rename(columns={"probs": "target"})
        pairs = groups.merge(overall, on="qkey").rename(columns={"probs": "pred"}).rename(columns={"target": "probs"})
        scored = score_pairs(pairs[[*KEY, "pred", "probs"]], truth, f"{truth.name} groups")
        avg = {"entry": "humans: groups vs public (avg)", "kind": "reference", "steering": UNSTEERED}
        _with_ci(avg, "rep_overall", _question_means(scored, "representativeness"), n_boot, seed, confidence)
        _with_ci(avg, "tv_overall", _question_means(scored, "tv"), n_boot, seed, confidence)
        by_group = scored.assign(cell=scored["attribute"] + ": " + scored["group"]).groupby("cell")
        rep, tv = by_group["representativeness"].mean(), by_group["tv"].mean()
        worst = {"entry": "humans: groups vs public (worst)", "kind": "reference", "steering": UNSTEERED,
                 "rep_overall": float(rep.min()), "tv_overall": float(tv.max()), "worst_group": str(rep.idxmin()),
                 "rep_worst_group": float(rep.min())}
        rows += [avg, worst]
    if len(groups):
        ref = metrics.group_reference(groups[[*KEY, "probs"]], truth.ordinal)
        if len(ref):
            per_target = ref.groupby(["qkey", "attribute", "group"])
            avg = per_target[["representativeness", "tv"]].mean().reset_index()
            worst = per_target.agg(representativeness=("representativeness", "min"), tv=("tv", "max")).reset_index()
            for kind, frame in (("avg", avg), ("worst", worst)):
                row = {"entry": f"humans: other groups ({kind})", "kind": "reference", "steering": UNSTEERED}
                _with_ci(row, "rep_groups", _question_means(frame, "representativeness"), n_boot, seed, confidence)
                _with_ci(row, "tv_groups", _question_means(frame, "tv"), n_boot, seed, confidence)
                rows.append(row)
    human = truth.human_annotations
    if human is not None and len(human):
        for steering, part in human.groupby("steering", sort=False):
            row = {"entry": f"human annotators · verbalized · {steering}", "kind": "reference", "steering": steering,
                   "method": "verbalized", "n_scored": int(len(part))}
            _with_ci(row, "tv_groups", part["tv"].to_numpy(dtype=float), n_boot, seed, confidence)
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
    keys = {(f.dataset, f.model, f.method, f.calibrated) for f in scored_by_file}
    for dataset, model, method, calibrated in sorted(keys):
        files = {f: s for f, s in scored_by_file.items()
                 if (f.dataset, f.model, f.method, f.calibrated) == (dataset, model, method, calibrated)}
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
            rows.append({"dataset": dataset, "model": model, "method": f"{method}+T" if calibrated else method,
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
    for (dataset, model, method, steering), seq in index.items():
        if method != "sequence" or (dataset, model, "verbalized", steering) not in index:
            continue
        verb = index[(dataset, model, "verbalized", steering)]
        both = seq[[*KEY, "tv"]].merge(verb[[*KEY, "tv"]], on=KEY, suffixes=("_seq", "_verb"))
        per_q = both.groupby("qkey")[["tv_seq", "tv_verb"]].mean().to_numpy()
        gap = metrics.knowledge_to_simulation_gap(per_q[:, 0], per_q[:, 1]) if len(per_q) else float("nan")
        boot = metrics.bootstrap_means(per_q, n_boot, seed) if len(per_q) else np.full((1, 2), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = boot[:, 0] / boot[:, 1] - 1.0
        tail = (1 - confidence) / 2 * 100
        lo, hi = np.nanpercentile(ratios, [tail, 100 - tail]) if np.isfinite(ratios).any() else (np.nan, np.nan)
        rows.append({"dataset": dataset, "model": model, "steering": steering, "tv_sequence": float(per_q[:, 0].mean()),
                     "tv_verbalized": float(per_q[:, 1].mean()), "k2s_gap": gap, "k2s_gap_lo": float(lo),
                     "k2s_gap_hi": float(hi), "n_questions": int(len(per_q))})
    return pd.DataFrame(rows, columns=["dataset", "model", "steering", "tv_sequence", "tv_verbalized", "k2s_gap",
                                       "k2s_gap_lo", "k2s_gap_hi", "n_questions"])
