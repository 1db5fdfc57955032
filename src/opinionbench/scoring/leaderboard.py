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
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from opinionbench.inference.predictions import BASELINE_METHOD, read_predictions, run_metadata
from opinionbench.scoring import evaluation as ev
from opinionbench.scoring.calibrate import at_search_bound, calibration_table
from opinionbench.scoring.evaluation import UNSTEERED, PredictionFile, Truth
from opinionbench.scoring.ranking import RANKED_KINDS, SAME_CELL_COLUMNS, ranked_frame, same_cell_scores
from opinionbench.scoring.registry import board_columns

REFERENCE_BASELINES = ("uniform", "overall-prior")
DEGENERATE = "degenerate: T at the search bound (the fit asks for a uniform or an argmax distribution); not a result"

# What an entry is and the per-file facts beside its metrics; the metric columns follow, from the registry.
# kind: model | baseline | oracle (a baseline that reads the answer: a ceiling) | reference (humans);
# source: ours | published (imported); calibrated_by: held-out (our calibrate) | in-sample (the source's).
ENTRY_COLUMNS = ["entry", "kind", "source", "model", "method", "steering", "calibrated", "calibrated_by", "temperature",
                 "flag", "n_questions", "n_scored", "failed_rate"]


def leaderboard_columns() -> list[str]:
    return [*ENTRY_COLUMNS, *SAME_CELL_COLUMNS(), *board_columns()]


def leaderboard_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows in the ranking's order (scoring/ranking.py): ranked entries by their score on the
    cells every ranked entry answered, then oracles, unranked entries, and human references."""
    return ranked_frame(pd.DataFrame(rows).reindex(columns=leaderboard_columns()))



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
        f = with_source(f, frame)
        frames[f], scored[f] = frame, ev.score_predictions(frame, truth, f.steering, str(f.path))
        temperature = temperatures.get((f.dataset, f.model, f.steering)) if f.calibrated_by == ev.HELD_OUT else None
        rows.append({"entry": f.label, "kind": f.kind, "source": f.source, "model": f.model,
                     "method": f.method, "steering": f.steering, "calibrated": f.calibrated,
                     "calibrated_by": f.calibrated_by or None, "temperature": temperature,
                     "flag": DEGENERATE if temperature is not None and at_search_bound(temperature) else None,
                     "failed_rate": float(frame["failed"].astype(bool).mean()), **ev.summarise(scored[f], **boot)})
    asked = sorted({q for frame in frames.values() for q in frame["qkey"]})
    extra_rows, extra_scored = computed_baselines(dataset, truth, asked,
                                                  {f.model for f in files if ev.is_baseline(f.method)}, boot)
    rows += extra_rows
    by_label = {f.label: s for f, s in scored.items()} | extra_scored
    ranked = {r["entry"] for r in rows if r["kind"] in RANKED_KINDS and not r.get("flag")}
    same = same_cell_scores(by_label, ranked, boot)
    rows = [r | same.get(r["entry"], {}) for r in rows]
    subset = Truth(dataset, truth.directory, truth.questions[truth.questions["qkey"].isin(asked)],
                   truth.distributions[truth.distributions["qkey"].isin(asked)], truth.human_annotations,
                   truth.ordinal, truth.n_options)
    rows += ev.human_group_references(subset, **boot)
    steer = ev.steerability_table(scored)
    calib, curves = calibration_table(scored, frames, truth, temperatures, reliability_bins)
    summary = (steer.groupby(["model", "method"], as_index=False)
               .agg(steerability=("steerability", "first"), unsteered=("unsteered", "mean"), groups=("group", "size"))
               if len(steer) else steer)
    heat = pd.DataFrame({f.label: ev.per_group_scores(s) for f, s in scored.items() if f.steering == UNSTEERED})
    return DatasetEvaluation(
        dataset=dataset, directory=Path(directory), truth=truth, asked=asked, frames=frames, scored=scored,
        board=leaderboard_frame(rows), steerability=steer, steerability_summary=summary,
        k2s=ev.knowledge_to_simulation(scored, **boot), calibration=calib, curves=curves, group_heatmap=heat)


def with_source(f: PredictionFile, frame: pd.DataFrame) -> PredictionFile:
    """`f` with the source its file records: our `calibrate` output of an imported run is
    `published` too (the predictions were made elsewhere; only T was fitted here)."""
    recorded = run_metadata(frame).get("source")
    return replace(f, source=ev.PUBLISHED) if recorded == ev.PUBLISHED and f.source != ev.PUBLISHED else f


def computed_baselines(dataset: str, truth: Truth, asked: list[str], present: set[str],
                       boot: dict) -> tuple[list[dict], dict[str, pd.DataFrame]]:
    """uniform / overall-prior rows for the baselines no predictions file provides, and their scored rows."""
    from opinionbench.inference.baselines import baseline_predictions
    from opinionbench.inference.cells import cells_to_predict

    rows: list[dict] = []
    scored_by_label: dict[str, pd.DataFrame] = {}
    if not asked:
        return rows, scored_by_label
    cells = cells_to_predict(truth.distributions, asked, None)
    for name in REFERENCE_BASELINES:
        if name in present or (name == "overall-prior" and not truth.has_overall):
            continue
        frame = baseline_predictions(name, truth.questions, truth.distributions, cells, dataset)
        frame["probs"] = frame["probs"].map(lambda p: list(map(float, p)))
        scored = ev.score_predictions(frame, truth, UNSTEERED, f"baseline {name}")
        label = f"{name} · {BASELINE_METHOD} · {UNSTEERED}"
        kind = PredictionFile(Path(), dataset, name, BASELINE_METHOD, UNSTEERED).kind
        rows.append({"entry": label, "kind": kind, "source": ev.OURS, "model": name,
                     "method": BASELINE_METHOD, "steering": UNSTEERED, "calibrated": False, "failed_rate": float(frame["failed"].mean()),
                     **ev.summarise(scored, **boot)})
        scored_by_label[label] = scored
    return rows, scored_by_label
