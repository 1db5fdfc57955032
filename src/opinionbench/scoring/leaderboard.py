"""One dataset's evaluation: every predictions file scored, the reference rows, the leaderboard
and its side tables (steerability, knowledge-to-simulation gap, calibration).

Why one function builds it all: the leaderboard files, the DVC metrics and the MLflow runs must
describe the same rows, so they are all written from the one `DatasetEvaluation` returned here.
The `uniform` and `overall-prior` reference rows come from their predictions files when the
infer-baseline stages wrote them, and are computed here when they did not, so every leaderboard
has its floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from opinionbench.inference.predictions import read_predictions
from opinionbench.scoring import evaluation as ev
from opinionbench.scoring.calibrate import calibration_table
from opinionbench.scoring.evaluation import PredictionFile, Truth

REFERENCE_BASELINES = ("uniform", "overall-prior")

LEADERBOARD_COLUMNS = [
    "entry", "kind", "model", "method", "steering", "calibrated", "temperature", "n_questions", "n_scored",
    "failed_rate", "rep_overall", "rep_overall_lo", "rep_overall_hi", "tv_overall", "tv_overall_lo",
    "tv_overall_hi", "js_overall", "rep_groups", "rep_groups_lo", "rep_groups_hi", "tv_groups", "tv_groups_lo",
    "tv_groups_hi", "rep_worst_group", "worst_group", "js_groups", "js_skew", "most_similar_group",
]


def leaderboard_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows in a stable order: models (best group representativeness first), then references."""
    frame = pd.DataFrame(rows).reindex(columns=LEADERBOARD_COLUMNS)
    frame["_ref"] = frame["kind"].eq("reference")
    frame["_score"] = frame["rep_groups"].fillna(frame["rep_overall"]).fillna(-frame["tv_groups"])
    frame = frame.sort_values(["_ref", "_score", "entry"], ascending=[True, False, True], kind="stable")
    return frame.drop(columns=["_ref", "_score"]).reset_index(drop=True)



@dataclass
class DatasetEvaluation:
    dataset: str
    directory: Path
    truth: Truth
    asked: list[str]  # every question some predictions file answers
    frames: dict[PredictionFile, pd.DataFrame]  # as read
    scored: dict[PredictionFile, pd.DataFrame]  # one row per target answered
    board: pd.DataFrame  # leaderboard_frame order
    steerability: pd.DataFrame
    steerability_summary: pd.DataFrame
    k2s: pd.DataFrame
    calibration: pd.DataFrame
    curves: dict[str, tuple[pd.DataFrame, pd.DataFrame, float]]
    group_heatmap: pd.DataFrame  # attribute: group × unsteered entry, representativeness


def evaluate_dataset(dataset: str, directory: Path, files: Sequence[PredictionFile],
                     temperatures: dict[tuple[str, str, str], float], *, n_boot: int, seed: int, confidence: float,
                     reliability_bins: int) -> DatasetEvaluation:
    """Score `files` (all of `dataset`) against the truth in `directory`."""
    boot = dict(n_boot=n_boot, seed=seed, confidence=confidence)
    truth = ev.load_truth(dataset, directory)
    scored: dict[PredictionFile, pd.DataFrame] = {}
    frames: dict[PredictionFile, pd.DataFrame] = {}
    rows: list[dict] = []
    for f in tqdm(files, desc=f"evaluate {dataset}", unit="file"):
        frame = read_predictions(f.path)
        frames[f], scored[f] = frame, ev.score_predictions(frame, truth, f.steering, str(f.path))
        temperature = temperatures.get((f.dataset, f.model, f.steering)) if f.calibrated else None
        rows.append({"entry": f.label, "kind": "baseline" if f.method == "baseline" else "model", "model": f.model,
                     "method": f.method, "steering": f.steering, "calibrated": f.calibrated,
                     "temperature": temperature, "failed_rate": float(frame["failed"].astype(bool).mean()),
                     **ev.summarise(scored[f], **boot)})
    asked = sorted({q for frame in frames.values() for q in frame["qkey"]})
    rows += computed_baselines(dataset, truth, asked, {f.model for f in files if f.method == "baseline"}, boot)
    subset = Truth(dataset, truth.directory, truth.questions[truth.questions["qkey"].isin(asked)],
                   truth.distributions[truth.distributions["qkey"].isin(asked)], truth.human_annotations,
                   truth.ordinal, truth.n_options)
    rows += ev.human_group_references(subset, **boot)
    steer = ev.steerability_table(scored)
    calib, curves = calibration_table(scored, frames, truth, temperatures, reliability_bins)
    summary = (steer.groupby(["model", "method"], as_index=False)
               .agg(steerability=("steerability", "first"), unsteered=("unsteered", "mean"), groups=("group", "size"))
               if len(steer) else steer)
    heat = pd.DataFrame({f.label: ev.per_group_scores(s) for f, s in scored.items() if f.steering == "none"})
    return DatasetEvaluation(
        dataset=dataset, directory=Path(directory), truth=truth, asked=asked, frames=frames, scored=scored,
        board=leaderboard_frame(rows), steerability=steer, steerability_summary=summary,
        k2s=ev.knowledge_to_simulation(scored, **boot), calibration=calib, curves=curves, group_heatmap=heat)


def computed_baselines(dataset: str, truth: Truth, asked: list[str], present: set[str], boot: dict) -> list[dict]:
    """uniform / overall-prior rows for the baselines no predictions file provides."""
    from opinionbench.inference.baselines import baseline_predictions
    from opinionbench.inference.cells import cells_to_predict

    rows: list[dict] = []
    if not asked:
        return rows
    cells = cells_to_predict(truth.distributions, asked, None)
    for name in REFERENCE_BASELINES:
        if name in present or (name == "overall-prior" and not truth.has_overall):
            continue
        frame = baseline_predictions(name, truth.questions, truth.distributions, cells, dataset)
        frame["probs"] = frame["probs"].map(lambda p: list(map(float, p)))
        scored = ev.score_predictions(frame, truth, "none", f"baseline {name}")
        rows.append({"entry": f"{name} · baseline · none", "kind": "baseline", "model": name, "method": "baseline",
                     "steering": "none", "calibrated": False, "failed_rate": float(frame["failed"].mean()),
                     **ev.summarise(scored, **boot)})
    return rows
