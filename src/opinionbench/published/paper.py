"""The distributional-alignment paper's tables, reproduced from its released outputs.

Definitions (the paper's, `eval_utils.py` of its repository): a cell's score is the total
variation between the model's letters (`avg_actual_results`, as stored) and the release's human
distribution (`expected_results`); `alignment_mean` = (mean over OpinionQA cells + mean over NYT
cells + mean over GlobalValues cells) / 3 over the persona (task1) and few-shot (task3_easy_hard)
cells of the groups the paper scored (`PAPER_GROUPS`); `alignment_error` = half the width of the
95% percentile bootstrap interval (each dataset's cells resampled, seeded); k2s gap =
alignment_mean(Seq) / alignment_mean(V) − 1. Every row is also scored against *our* truth (the
imported dataset's distribution, refusals kept apart) with our normalised predictions, failed
cells left out, side by side; and compared with the published value (`published`, `difference`).

Two departures of the paper from its own outputs are reproduced, and reported, not silently fixed:
a cell whose reply was not parsed is scored as a prediction of all zeros (TV = 0.5); and the
unsteered OpinionQA scores (task0) pair the letters with the question's `MC_options` order,
while the prompt listed the Democrats' labels alphabetically (`mean_prompt_order` pairs them as
the prompt did).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from opinionbench.published.common import DatasetCatalog
from opinionbench.published.distributional_alignment import ReleaseOptions
from opinionbench.scoring import metrics

PAPER_LABELS = {"express_distribution": "V", "sequence": "Seq", "model_logprobs": "Log-p",
                "rescaled_model_logprobs": "TS-Log-p"}
DATASETS = ("opinionqa", "nytimes", "globalvalues")
STEERED = ("task1", "task3_easy_hard")
TASK_ORDER = ("task0", "task1", "task3_easy_hard")
PAPER_GROUPS = {  # (attribute folder, group file) the paper scored (lm_steering_eval.py)
    "opinionqa": {("POLPARTY", "Democrat"), ("POLPARTY", "Republican"), ("SEX", "Male"), ("SEX", "Female"),
                  ("RACE", "Black"), ("RACE", "White")},
    "nytimes": {("POLPARTY", "Democrat"), ("POLPARTY", "Republican"), ("SEX", "Male"), ("SEX", "Female")},
    "globalvalues": {("globalvalues", "0"), ("globalvalues", "1"), ("globalvalues", "2")},
}
SAMPLES = 30  # the paper's simulated ground truth: 30 draws from the human distribution
TOLERANCE = 0.005
PUBLISHED = {"main": "leaderboard_distrib_alignment.csv", "all": "leaderboard_distrib_alignment_all.csv",
             "k2s": "k2s_gap.csv"}


def _tv(p: object, q: object) -> float:
    """The paper's per-cell TV (unnormalised, as stored); NaN where it is undefined."""
    if p is None or q is None:
        return math.nan
    pa, qa = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if pa.shape != qa.shape or pa.size == 0 or np.isnan(pa).any() or np.isnan(qa).any():
        return math.nan
    return float(metrics.total_variation(pa, qa))


def _tv_by_label(p: object, labels: list[str] | None, q: object, q_labels: list[str] | None) -> float:
    """TV with each side read by its own option labels (task0: the prompt listed the Democrats'
    labels, each group's truth is over that group's labels)."""
    if labels is None or q_labels is None or labels == q_labels:
        return _tv(p, q)
    if p is None or q is None or len(p) != len(labels) or len(q) != len(q_labels):
        return math.nan
    union = list(dict.fromkeys([*labels, *q_labels]))
    pa = [dict(zip(labels, p)).get(u, 0.0) for u in union]
    qa = [dict(zip(q_labels, q)).get(u, 0.0) for u in union]
    return _tv(pa, qa)


def _paper_task0_expected(options: ReleaseOptions, row) -> list[float] | None:
    """The truth the paper's task0 OpinionQA scoring used: counts in `MC_options` order."""
    size = int(row.dataset.rsplit("_", 1)[1])
    found = options.opinionqa_counts(size, row.release_key, row.attribute_dir, row.group_file)
    if found is None or row.avg is None:
        return None
    mc_options, counts = found
    n = sum(counts.values())
    if n <= 0:
        return None
    return [counts.get(o, 0) / n for j, o in enumerate(mc_options) if j < len(row.avg)]


def score_cells(cells: pd.DataFrame, catalog: DatasetCatalog, root: Path) -> pd.DataFrame:
    """Every release cell with `tv_paper` (as the paper computed it), `tv_prompt_order` (their
    truth, letters read as the prompt listed them), `tv_ours` (our prediction vs our truth)."""
    out = cells.copy()
    out["in_paper"] = [(a, g) in PAPER_GROUPS.get(d, set())
                       for d, a, g in zip(out["release_dataset"], out["attribute_dir"], out["group_file"])]
    out["tv_prompt_order"] = [_tv_by_label(p, pl, q, ql) for p, pl, q, ql in
                              zip(out["avg"], out["labels"], out["expected"], out["expected_labels"])]
    options = ReleaseOptions(root)
    expected_paper = list(out["expected"])
    task0 = (out["task"] == "task0") & (out["release_dataset"] == "opinionqa")
    for index in np.flatnonzero(task0.to_numpy()):
        expected_paper[index] = _paper_task0_expected(options, out.iloc[index])
    out["expected_paper"] = expected_paper
    out["tv_paper"] = [_tv(p, q) for p, q in zip(out["avg"], out["expected_paper"])]
    ours = []
    for d, q, a, g, pred in zip(out["dataset"], out["qkey"], out["attribute"], out["group"], out["pred"]):
        view = catalog.get(d)
        truth = None if view is None else view.truth.get((q, a, g))
        ours.append(math.nan if pred is None or truth is None or len(pred) != len(truth)
                    else float(metrics.total_variation(np.asarray(pred, float), truth)))
    out["tv_ours"] = ours
    return out


def _interval(boot: np.ndarray, confidence: float) -> float:
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(boot, [tail, 100 - tail])
    return float((high - low) / 2)


def pooled(values: dict[str, np.ndarray], n_boot: int, seed: int, confidence: float) -> tuple[float, float]:
    """(mean of the per-dataset means, bootstrap half-width); NaN when a dataset has no cells."""
    clean = {d: v[~np.isnan(v)] for d, v in values.items()}
    if not clean or any(v.size == 0 for v in clean.values()):
        return math.nan, math.nan
    mean = float(np.mean([v.mean() for v in clean.values()]))
    boots = np.mean([metrics.bootstrap_means(v, n_boot=n_boot, seed=seed + i) for i, v in enumerate(clean.values())],
                    axis=0)
    return mean, _interval(boots, confidence)


def noise_floor(p: np.ndarray, n: int = SAMPLES) -> float:
    """E[TV(p̂, p)] for p̂ the shares of n draws from p, exactly: ½·Σ_j E|X_j/n − p_j|, X_j ~ Bin(n, q_j).

    The paper simulated it (1,000 × 30 draws per cell); the marginals suffice because TV is a
    sum over options, so the expectation needs no simulation. Draws follow q = p / Σp (as
    `random.choices` weights do), compared with p as stored (the paper's truths do not always sum to 1).
    """
    p = np.asarray(p, dtype=float)
    if p.size == 0 or np.isnan(p).any() or p.sum() <= 0:
        return math.nan
    q = p / p.sum()
    x = np.arange(n + 1)
    log_comb = np.array([math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in x])
    total = 0.0
    for pj, qj in zip(p, q):
        if qj <= 0 or qj >= 1:
            total += abs(n * qj / n - pj)  # a certain count: X_j = n·q_j
            continue
        pmf = np.exp(log_comb + x * math.log(qj) + (n - x) * math.log1p(-qj))
        total += float(np.sum(pmf * np.abs(x / n - pj)))
    return 0.5 * total


def _published(root: Path, name: str) -> pd.DataFrame:
    path = Path(root) / "results" / PUBLISHED[name]
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def _split_name(name: str) -> tuple[str, str]:
    match = re.match(r"^(.*) \(([^)]+)\)$", str(name))
    return (match.group(1), match.group(2)) if match else (str(name), "")


def _status(value: float, published: float, cells: int) -> str:
    if math.isnan(published) if isinstance(published, float) else published is None:
        return "no published value" if cells else "no published value; no cells in the release"
    if cells == 0 or math.isnan(value):
        return "published, but the release has no outputs for it"
    return "matches" if abs(value - published) <= TOLERANCE else "differs"


REFERENCE_TASKS = {"opinionqa": "task0", "nytimes": "task0", "globalvalues": "task1"}  # where the paper drew them


def reference_rows(scored: pd.DataFrame, catalog: DatasetCatalog) -> pd.DataFrame:
    """Per cell: uniform's TV and the 30-sample noise floor — on the cells the paper used (its
    unsteered OpinionQA/NYT cells, its persona Global Values cells, with the truth as it paired
    it), and on the steered cells every model row is scored on (`*_steered`, their truth; `*_ours`)."""
    rows = []
    for steered in (False, True):
        picked = scored[scored["in_paper"] & scored["expected_paper"].notna() & (
            scored["task"].isin(STEERED) if steered else
            scored["task"] == scored["release_dataset"].map(REFERENCE_TASKS))]
        picked = picked.drop_duplicates(["release_dataset", "release_key", "attribute_dir", "group_file"])
        for r in picked.itertuples(index=False):
            expected = np.asarray(r.expected_paper, dtype=float)
            view = catalog.get(r.dataset)
            ours = None if view is None else view.truth.get((r.qkey, r.attribute, r.group))
            k = len(r.avg) if r.avg else expected.size
            row = {"release_dataset": r.release_dataset, "steered": steered,
                   "uniform": _tv(np.full(expected.size, 1 / k), expected) if expected.size else math.nan,
                   "noise_floor": noise_floor(expected)}
            if steered:
                row.update(uniform_ours=math.nan if ours is None else _tv(np.full(ours.size, 1 / ours.size), ours),
                           noise_floor_ours=math.nan if ours is None else noise_floor(ours))
            rows.append(row)
    return pd.DataFrame(rows)


def _published_value(table: pd.DataFrame, model: str, label: str, dataset: str, task: str) -> tuple[float, float]:
    if table.empty:
        return math.nan, math.nan
    name = f"{model} ({label})" if label else model
    hit = table[(table["Model Name"] == name) & (table["Dataset"] == dataset) & (table["Task Type"] == task)]
    if hit.empty:
        return math.nan, math.nan
    return float(hit["Alignment Mean"].iloc[0]), float(hit["Alignment Error"].iloc[0])


def _models(scored: pd.DataFrame, published: pd.DataFrame) -> list[str]:
    ours = sorted(set(scored["model"]))
    theirs = [] if published.empty else [_split_name(n)[0] for n in published["Model Name"] if "(" in str(n)]
    return ours + [m for m in dict.fromkeys(theirs) if m not in ours]


def _note(sub: pd.DataFrame) -> str:
    """What the release itself failed among these cells, by our import's reason."""
    failed = sub.loc[sub["error"].notna(), "error"].map(lambda e: str(e).split(":", 1)[0])
    if failed.empty:
        return ""
    counts = failed.value_counts()
    return "; ".join(f"{n} {reason}" for reason, n in counts.items()) + " (the paper scores unparsed replies as TV 0.5)"


def alignment_table(scored: pd.DataFrame, references: pd.DataFrame, root: Path, n_boot: int, seed: int,
                    confidence: float) -> pd.DataFrame:
    """`distributional_alignment.csv`: the paper's main table, reproduced and compared."""
    published = _published(root, "main")
    steered = scored[scored["in_paper"] & scored["task"].isin(STEERED)]
    rows = []
    for model in _models(scored, published):
        for output_type, label in PAPER_LABELS.items():
            sub = steered[(steered["model"] == model) & (steered["output_type"] == output_type)]
            by = {d: sub[sub["release_dataset"] == d] for d in DATASETS}
            mean, error = pooled({d: f["tv_paper"].to_numpy(float) for d, f in by.items()}, n_boot, seed, confidence)
            ours, ours_error = pooled({d: f["tv_ours"].to_numpy(float) for d, f in by.items()}, n_boot, seed, confidence)
            value, value_error = _published_value(published, model, label, "three", "task1_task3")
            n = {f"n_{d}": int(f["tv_paper"].notna().sum()) for d, f in by.items()}
            rows.append({
                "model": model, "method": label, "alignment_mean": mean, "alignment_error": error, **n,
                "published": value, "published_error": value_error, "difference": mean - value,
                "status": _status(mean, value, sum(n.values())), "failed_cells": int(sub["error"].notna().sum()),
                "note": _note(sub), "in_sample_calibration": output_type == "rescaled_model_logprobs",
                "alignment_mean_our_truth": ours, "alignment_error_our_truth": ours_error,
                "n_our_truth": int(sub["tv_ours"].notna().sum()),
            })
    for column, name, task in (("uniform", "uniform", "uniform"), ("noise_floor", f"ground truth, {SAMPLES} samples",
                                                                  "ground_truth")):
        paper_cells, steered_cells = references[~references["steered"]], references[references["steered"]]
        by = {d: paper_cells.loc[paper_cells["release_dataset"] == d, column].to_numpy(float) for d in DATASETS}
        mean, error = pooled(by, n_boot, seed, confidence)
        ours, ours_error = pooled({d: steered_cells.loc[steered_cells["release_dataset"] == d, f"{column}_ours"]
                                   .to_numpy(float) for d in DATASETS}, n_boot, seed, confidence)
        value, value_error = _published_value(published, "simulated", "", "three", task)
        n = {f"n_{d}": int(np.isfinite(v).sum()) for d, v in by.items()}
        rows.append({"model": name, "method": "reference", "alignment_mean": mean, "alignment_error": error, **n,
                     "published": value, "published_error": value_error, "difference": mean - value,
                     "status": _status(mean, value, sum(n.values())), "failed_cells": 0,
                     "note": "the paper's cells (unsteered OQA/NYT, persona GV; its truth pairing); "
                             "our-truth columns: the steered cells the models are scored on",
                     "in_sample_calibration": False, "alignment_mean_our_truth": ours,
                     "alignment_error_our_truth": ours_error,
                     "n_our_truth": int(steered_cells[f"{column}_ours"].notna().sum())})
    return pd.DataFrame(rows)


def _gap(sequence: float, verbalized: float) -> float:
    both = np.isfinite([sequence, verbalized]).all()
    return metrics.knowledge_to_simulation_gap([sequence], [verbalized]) if both else math.nan


def k2s_table(alignment: pd.DataFrame, root: Path) -> pd.DataFrame:
    """`k2s_gap.csv`: alignment_mean(Seq) / alignment_mean(V) − 1 per model, their truth and ours."""
    published = _published(root, "k2s")
    rows = []
    for model, frame in alignment[alignment["method"] != "reference"].groupby("model", sort=False):
        by = frame.set_index("method")
        gap, ours = (_gap(by.at["Seq", f"alignment_mean{suffix}"], by.at["V", f"alignment_mean{suffix}"])
                     for suffix in ("", "_our_truth"))
        hit = published[published["Model Name"] == model] if not published.empty else published
        value = float(hit["K2S Mean"].iloc[0]) if not hit.empty else math.nan
        rows.append({"model": model, "k2s_gap": gap, "published": value, "difference": gap - value,
                     "status": _status(gap, value, int(not math.isnan(gap))), "k2s_gap_our_truth": ours})
    return pd.DataFrame(rows)


def per_task_table(scored: pd.DataFrame, references: pd.DataFrame, root: Path, n_boot: int, seed: int,
                   confidence: float) -> pd.DataFrame:
    """`distributional_alignment_all.csv`: dataset × task × model × method (and `both` = OQA + NYT)."""
    published = _published(root, "all")
    selected = scored[scored["in_paper"]]
    rows = []

    def add(dataset: str, task: str, model: str, label: str, cells: dict[str, pd.DataFrame]) -> None:
        mean, error = pooled({d: f["tv_paper"].to_numpy(float) for d, f in cells.items()}, n_boot, seed, confidence)
        prompt, _ = pooled({d: f["tv_prompt_order"].to_numpy(float) for d, f in cells.items()}, n_boot, seed, confidence)
        ours, ours_error = pooled({d: f["tv_ours"].to_numpy(float) for d, f in cells.items()}, n_boot, seed, confidence)
        value, value_error = _published_value(published, model, label, dataset, task)
        n = int(sum(f["tv_paper"].notna().sum() for f in cells.values()))
        rows.append({"dataset": dataset, "task": task, "model": model, "method": label, "mean": mean, "error": error,
                     "n": n, "published": value, "published_error": value_error, "difference": mean - value,
                     "status": _status(mean, value, n), "mean_prompt_order": prompt, "mean_our_truth": ours,
                     "error_our_truth": ours_error, "n_our_truth": int(sum(f["tv_ours"].notna().sum() for f in cells.values())),
                     "failed_cells": int(sum(f["error"].notna().sum() for f in cells.values()))})

    models = _models(scored, published)
    for dataset in DATASETS:
        for task in TASK_ORDER:
            if dataset == "globalvalues" and task == "task0":
                continue  # the release has no unsteered Global Values run
            for model in models:
                for output_type, label in PAPER_LABELS.items():
                    sub = selected[(selected["release_dataset"] == dataset) & (selected["task"] == task)
                                   & (selected["model"] == model) & (selected["output_type"] == output_type)]
                    add(dataset, task, model, label, {dataset: sub})
    for model in models:
        for output_type, label in PAPER_LABELS.items():
            sub = selected[selected["task"].isin(STEERED) & (selected["model"] == model)
                           & (selected["output_type"] == output_type)]
            add("both", "task1_task3", model, label, {d: sub[sub["release_dataset"] == d] for d in DATASETS[:2]})
    for dataset in DATASETS:
        for column, task in (("uniform", "uniform"), ("noise_floor", "ground_truth")):
            values = references.loc[(references["release_dataset"] == dataset) & ~references["steered"]]
            steered = references.loc[(references["release_dataset"] == dataset) & references["steered"]]
            mean, error = pooled({dataset: values[column].to_numpy(float)}, n_boot, seed, confidence)
            prompt, _ = pooled({dataset: steered[column].to_numpy(float)}, n_boot, seed, confidence)
            ours, ours_error = pooled({dataset: steered[f"{column}_ours"].to_numpy(float)}, n_boot, seed, confidence)
            value, value_error = _published_value(published, "simulated", "", dataset, task)
            n = int(values[column].notna().sum())
            rows.append({"dataset": dataset, "task": task, "model": "simulated", "method": "reference", "mean": mean,
                         "error": error, "n": n, "published": value, "published_error": value_error,
                         "difference": mean - value, "status": _status(mean, value, n), "mean_prompt_order": prompt,
                         "mean_our_truth": ours, "error_our_truth": ours_error,
                         "n_our_truth": int(steered[f"{column}_ours"].notna().sum()), "failed_cells": 0})
    return pd.DataFrame(rows)
