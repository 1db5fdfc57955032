"""`evaluate` stage: every predictions file found → leaderboards, DVC metrics/plots, figures, MLflow runs.

Predictions are discovered, not configured: each `<dataset>/<model>/<method>/<steering>.parquet`
under `evaluate.predictions_dir` (and the temperature-scaled ones under
`evaluate.calibrated_dir`) is scored, so adding a model to the infer matrix needs no change
here. The `uniform` and `overall-prior` reference rows come from their predictions files when
the infer stage wrote them, and are computed here (same module) when it did not.
"""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from opinionbench.config import BuildParams, DatasetsParams, EvaluateParams, TrackingParams, load_params

REFERENCE_BASELINES = ("uniform", "overall-prior")


def run(args: argparse.Namespace) -> int:
    from opinionbench import evaluation as ev
    from opinionbench import report
    from opinionbench.inference.predictions import read_predictions

    params, build, datasets, tracking = load_params("evaluate", "build", "datasets", "tracking", path=args.params)
    assert isinstance(params, EvaluateParams) and isinstance(build, BuildParams)
    assert isinstance(datasets, DatasetsParams) and isinstance(tracking, TrackingParams)
    boot = dict(n_boot=params.bootstrap, seed=params.seed, confidence=params.confidence)
    files = ev.discover(params.predictions_dir) + ev.discover(params.calibrated_dir, calibrated=True)
    temperatures = _temperatures(params.temperatures)
    out = params.out_dir
    for sub in ("leaderboards", "figures", "plots"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True, exist_ok=True)

    leaderboards: dict[str, pd.DataFrame] = {}
    runs: list[dict] = []
    for dataset in sorted({f.dataset for f in files}):
        directory = ev.dataset_dir(dataset, datasets.out_dir, build.out_dir)
        truth = ev.load_truth(dataset, directory)
        mine = [f for f in files if f.dataset == dataset]
        scored: dict[ev.PredictionFile, pd.DataFrame] = {}
        frames: dict[ev.PredictionFile, pd.DataFrame] = {}
        rows: list[dict] = []
        for f in tqdm(mine, desc=f"evaluate {dataset}", unit="file"):
            frame = read_predictions(f.path)
            frames[f], scored[f] = frame, ev.score_predictions(frame, truth, f.steering, str(f.path))
            temperature = temperatures.get((f.dataset, f.model, f.steering)) if f.calibrated else None
            rows.append({"entry": f.label, "kind": "baseline" if f.method == "baseline" else "model", "model": f.model,
                         "method": f.method, "steering": f.steering, "calibrated": f.calibrated,
                         "temperature": temperature, "failed_rate": float(frame["failed"].astype(bool).mean()),
                         **ev.summarise(scored[f], **boot)})
        asked = sorted({q for frame in frames.values() for q in frame["qkey"]})
        rows += _computed_baselines(dataset, truth, asked, {f.model for f in mine if f.method == "baseline"}, boot)
        subset = ev.Truth(dataset, truth.directory, truth.questions[truth.questions["qkey"].isin(asked)],
                          truth.distributions[truth.distributions["qkey"].isin(asked)], truth.human_annotations,
                          truth.ordinal, truth.n_options)
        rows += ev.human_group_references(subset, **boot)
        board = report.leaderboard_frame(rows)
        leaderboards[dataset] = board

        steer = ev.steerability_table(scored)
        k2s = ev.knowledge_to_simulation(scored, **boot)
        calib, curves = _calibration(scored, frames, truth, temperatures, params.reliability_bins)
        summary = (steer.groupby(["model", "method"], as_index=False)
                   .agg(steerability=("steerability", "first"), unsteered=("unsteered", "mean"), groups=("group", "size"))
                   if len(steer) else steer)
        extra = [("Steerability (OpinionQA): best persona format per group vs unsteered, same groups", summary),
                 ("Steerability per group (best persona format)", steer),
                 ("Knowledge-to-simulation gap: TV(sequence)/TV(verbalized) − 1", k2s),
                 ("Temperature scaling on held-out questions (before → after)", calib)]
        written = report.write_leaderboard(out / "leaderboards", dataset, board, params.confidence, extra)
        for name, table in (("steerability", steer), ("k2s_gap", k2s), ("calibration", calib)):
            if len(table):
                path = out / "leaderboards" / f"{dataset}_{name}.csv"
                table.to_csv(path, index=False)
                written.append(path)
        figures = [report.leaderboard_figure(dataset, board, params.confidence,
                                             out / "figures" / f"{dataset}_leaderboard.png")]
        heat = pd.DataFrame({f.label: ev.per_group_scores(s) for f, s in scored.items() if f.steering == "none"})
        if not heat.empty:
            figures.append(report.heatmap_figure(dataset, heat.sort_index(), out / "figures" / f"{dataset}_group_heatmap.png"))
        if curves:
            figures.append(report.reliability_figure(dataset, curves, out / "figures" / f"{dataset}_reliability.png"))
        print(f"{dataset}: {len(mine)} predictions files, {len(asked)} questions -> {written[1]}")
        runs.append({"dataset": dataset, "truth": truth, "directory": directory, "scored": scored, "frames": frames,
                     "board": board, "artifacts": written + figures, "asked": asked})

    report.write_dvc_files(out, leaderboards)
    (out / "leaderboards" / "README.md").write_text(_index(leaderboards))
    if not files:
        print(f"no predictions under {params.predictions_dir}: empty leaderboards (run the infer stages first)")
    if tracking.enabled and runs:
        _track(tracking, runs, temperatures, out, args.params)
    return 0


def _temperatures(path: Path) -> dict[tuple[str, str, str], float]:
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    return {(d, m, s): float(r["temperature"]) for d, entry in report.get("datasets", {}).items()
            for m, by_steering in entry.get("runs", {}).items() for s, r in by_steering.items()}


def _computed_baselines(dataset, truth, asked, present, boot) -> list[dict]:
    """uniform / overall-prior rows, computed here when no predictions file provides them."""
    from opinionbench import evaluation as ev
    from opinionbench.models.baselines import baseline_predictions, cells_to_predict

    rows = []
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


def _calibration(scored, frames, truth, temperatures, bins):
    """Before/after on the held-out questions, and the reliability curves, per calibrated file."""
    from opinionbench import evaluation as ev
    from opinionbench.calibrate import reliability_curve

    rows, curves = [], {}
    raw = {(f.model, f.steering): f for f in scored if f.method == "logprobs" and not f.calibrated}
    for f, after in scored.items():
        if not f.calibrated or (f.model, f.steering) not in raw:
            continue
        before_file = raw[(f.model, f.steering)]
        held = set(frames[f]["qkey"])
        before = scored[before_file][scored[before_file]["qkey"].isin(held)]
        row = {"model": f.model, "steering": f.steering, "temperature": temperatures.get((f.dataset, f.model, f.steering)),
               "heldout_questions": len(held)}
        for name, frame in (("before", before), ("after", after)):
            row[f"tv_{name}"] = float(frame["tv"].mean()) if len(frame) else float("nan")
            row[f"rep_{name}"] = float(frame["representativeness"].mean()) if len(frame) else float("nan")
        rows.append(row)
        pairs_before = ev.pair_predictions(frames[before_file][frames[before_file]["qkey"].isin(held)], truth,
                                           f.steering, str(before_file.path))
        pairs_after = ev.pair_predictions(frames[f], truth, f.steering, str(f.path))
        if len(pairs_before) and len(pairs_after):
            curves[f"{f.model} · {f.steering}"] = (
                reliability_curve(list(pairs_before["pred"]), list(pairs_before["probs"]), bins),
                reliability_curve(list(pairs_after["pred"]), list(pairs_after["probs"]), bins),
                row["temperature"] if row["temperature"] is not None else float("nan"))
    return pd.DataFrame(rows, columns=["model", "steering", "temperature", "heldout_questions", "tv_before",
                                       "rep_before", "tv_after", "rep_after"]), curves


def _index(leaderboards: dict[str, pd.DataFrame]) -> str:
    lines = ["# Leaderboards\n"] + [f"- [{d}]({d}.md): {len(b)} rows" for d, b in leaderboards.items()]
    return "\n".join(lines) + "\n"


def _track(tracking: TrackingParams, runs: list[dict], temperatures: dict, out: Path, params_path: Path) -> None:
    from opinionbench.evaluation import question_sample_digest
    from opinionbench.tracking import Tracker, declared_secret_names

    execution = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tracker = Tracker(tracking, execution, declared_secret_names(params_path))
    for item in runs:
        dataset, board = item["dataset"], item["board"]
        by_label = {row["entry"]: row for row in board.to_dict("records")}
        used_data = [item["directory"] / "questions.parquet", item["directory"] / "distributions.parquet"]
        logged = item["truth"].distributions[item["truth"].distributions["qkey"].isin(item["asked"])]
        with tracker.dataset(dataset, {"opinionbench.dataset": dataset,
                                       "question_sample": question_sample_digest(item["asked"])}):
            for f, frame in item["frames"].items():
                row = by_label.get(f.label, {})
                params = {
                    "dataset": dataset, "model": f.model, "model_id": _unique(frame, "model_id"),
                    "model_revision": _unique(frame, "model_revision"), "method": f.method, "steering": f.steering,
                    "calibrated": f.calibrated, "template_hash": _unique(frame, "template_hash"),
                    "calibration_temperature": temperatures.get((dataset, f.model, f.steering)) if f.calibrated else None,
                    "question_sample": question_sample_digest(frame["qkey"]), "n_questions": frame["qkey"].nunique(),
                    "predictions_file": str(f.path),
                }
                metrics = {k: row.get(k) for k in ("rep_overall", "rep_overall_lo", "rep_overall_hi", "tv_overall",
                                                    "rep_groups", "rep_groups_lo", "rep_groups_hi", "tv_groups",
                                                    "tv_groups_lo", "tv_groups_hi", "rep_worst_group", "js_overall",
                                                    "js_groups", "js_skew", "failed_rate", "n_questions")}
                artifacts = {path: path.parent.name for path in item["artifacts"]}
                if tracking.log_predictions:
                    artifacts[f.path] = "predictions"
                tracker.log_run(run_name=f.label, params=params, metrics=metrics,
                                tags={"opinionbench.role": "model-run", "opinionbench.entry": f.label},
                                artifacts=artifacts, data=logged, data_source=item["directory"], data_name=dataset,
                                used_files=[*used_data, f.path])
            tracker.log_artifacts({path: path.parent.name for path in item["artifacts"]})  # on the parent run
    print(f"MLflow: {sum(len(i['frames']) for i in runs)} runs logged to {tracker.uri} (execution {execution})")


def _unique(frame: pd.DataFrame, column: str) -> str:
    values = sorted({str(v) for v in frame[column].dropna()}) if column in frame else []
    return ",".join(values) if values else "unknown"
