"""An evaluation as MLflow runs: which data, prompts and code made each leaderboard number.

Per dataset, one parent run per execution holding its leaderboards and figures, and a child run
per predictions file named by its leaderboard entry (params: every knob inference recorded;
metrics: the registry's MLflow metrics and the cross-entry numbers that belong to it; lineage
tags; the per-question table), plus one run per human reference row. A run is logged once:
its key (`run_key`) covers its files, settings and numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from opinionbench.elicit import k2s_pair
from opinionbench.inference.cost import run_cost
from opinionbench.inference.predictions import run_metadata
from opinionbench.scoring.evaluation import PUBLISHED, UNSTEERED, calibratable, is_baseline, question_sample_digest
from opinionbench.scoring.registry import mlflow_keys
from opinionbench.tracking.adapter import RUN_KEY_TAG, Tracker
from opinionbench.tracking.lineage import file_md5s
from opinionbench.tracking.secrets import declared_secret_names
from opinionbench.tracking.settings import TrackingParams
from opinionbench.tracking.store import store_lock, tracking_uri

if TYPE_CHECKING:
    from opinionbench.scoring.evaluation import PredictionFile
    from opinionbench.scoring.leaderboard import DatasetEvaluation

# Per-file facts of the leaderboard logged as metrics beside the registry's MLflow metrics.
RUN_FACTS = ("failed_rate", "n_questions")
# What inference recorded in the predictions file (inference.predictions.run_metadata) that is a
# cost, logged as metrics; everything else it recorded is logged as params (every knob it used).
RUN_COST_METRICS = ("infer_seconds", "infer_tokens", "failures", "cells")


def run_metrics() -> list[str]:
    """Leaderboard columns logged as MLflow metrics of each run."""
    return [*mlflow_keys(), *RUN_FACTS]


def question_table(item: DatasetEvaluation, f: PredictionFile, frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Per-question rows for inspection in the MLflow UI: question, group, the options, the
    predicted and human distributions, TV and the raw reply (the first `limit` rows)."""
    if limit <= 0:
        return pd.DataFrame()
    scored = item.scored[f][["qkey", "attribute", "group", "tv"]].head(limit)
    human = item.truth.distributions[["qkey", "attribute", "group", "probs"]].rename(columns={"probs": "human"})
    predicted = frame[["qkey", "attribute", "group", "probs", "raw_reply"]].rename(columns={"probs": "predicted"})
    out = scored.merge(human, on=["qkey", "attribute", "group"], how="left")
    if f.steering == UNSTEERED:  # an unsteered model answers once; every group is scored against that answer
        once = predicted.drop_duplicates("qkey").drop(columns=["attribute", "group"])
        out = out.merge(once, on="qkey", how="left")
    else:
        out = out.merge(predicted, on=["qkey", "attribute", "group"], how="left")
    texts = item.truth.questions.set_index("qkey")
    out.insert(1, "question", out["qkey"].map(texts["question"]))
    out.insert(2, "options", out["qkey"].map(lambda k: " | ".join(map(str, texts.at[k, "options"]))))
    for column in ("human", "predicted"):
        out[column] = out[column].map(lambda p: " ".join(f"{float(x):.3f}" for x in p) if p is not None and len(p) else "")
    out["group"] = out["attribute"] + ": " + out["group"]
    return out.drop(columns=["attribute"]).assign(tv=out["tv"].round(4))


def run_key(dataset: str, label: str, used_files: list[Path], settings: Mapping[str, Any],
            metrics: Mapping[str, Any]) -> str:
    """What makes a model run: its predictions and truth files (md5), the evaluation settings and
    the numbers they gave. Equal keys mean the run is already in MLflow; any change is a new run."""
    payload = {"dataset": dataset, "entry": label, "files": sorted(file_md5s(used_files).values()),
               "settings": dict(sorted(settings.items())),
               "metrics": {k: (round(float(v), 10) if isinstance(v, (int, float)) and pd.notna(v) else None)
                           for k, v in sorted(metrics.items())}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def entry_metrics(item: DatasetEvaluation, f: PredictionFile) -> dict[str, float]:
    """The leaderboard's cross-entry numbers that belong to this run: `steerability` (its model
    and method, over steerings), `k2s_gap` (its model and steering, on the two methods of the
    gap), `calibration_tv_before`/`calibration_tv_after` (its model and steering, on calibratable runs)."""
    out: dict[str, float] = {}
    method = f.method_label
    steer = item.steerability
    rows = steer[(steer["model"] == f.model) & (steer["method"] == method)] if len(steer) else steer
    if len(rows):
        out["steerability"] = float(rows["steerability"].iloc[0])
    k2s = item.k2s
    if f.method in k2s_pair() and not f.calibrated and len(k2s):
        rows = k2s[(k2s["model"] == f.model) & (k2s["steering"] == f.steering)]
        if len(rows):
            out["k2s_gap"] = float(rows["k2s_gap"].iloc[0])
    calib = item.calibration
    if calibratable(f.method) and len(calib):
        rows = calib[(calib["model"] == f.model) & (calib["steering"] == f.steering)
                     & (calib["calibrated_by"].fillna("") == (f.calibrated_by if f.calibrated else "held-out"))]
        if len(rows):
            out["calibration_tv_before"] = float(rows["tv_before"].iloc[0])
            out["calibration_tv_after"] = float(rows["tv_after"].iloc[0])
    return out


def log_evaluation(params: TrackingParams, evaluations: list[DatasetEvaluation], artifacts: dict[str, list[Path]],
                   temperatures: dict[tuple[str, str, str], float], params_path: Path,
                   settings: Mapping[str, Any] | None = None, parts_dir: Path | None = None) -> str:
    """One execution of the evaluate stage in MLflow: per dataset a parent run holding its
    leaderboards and figures (`artifacts[dataset]`), and a child run per predictions file named
    by its leaderboard entry — only for entries not already logged with the same predictions,
    truth, evaluation `settings` and numbers (`run_key`), so re-running evaluate, or adding one
    model, adds no duplicate runs. Returns the line saying what was logged where."""
    with store_lock(tracking_uri(params)):  # parallel experiments' evaluate stages take turns on one SQLite file
        return _log_evaluation(params, evaluations, artifacts, temperatures, params_path, settings, parts_dir)


def _log_evaluation(params: TrackingParams, evaluations: list[DatasetEvaluation], artifacts: dict[str, list[Path]],
                    temperatures: dict[tuple[str, str, str], float], params_path: Path,
                    settings: Mapping[str, Any] | None, parts_dir: Path | None) -> str:
    execution = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tracker = Tracker(params, execution, declared_secret_names(params_path))
    settings = dict(settings or {})
    evaluation_params = {f"evaluate.{k}": v for k, v in settings.items()}
    logged_metrics = run_metrics()
    new = skipped = 0
    for item in evaluations:
        dataset = item.dataset
        by_label = {row["entry"]: row for row in item.board.to_dict("records")}
        used_data = [item.directory / "questions.parquet", item.directory / "distributions.parquet"]
        logged = item.truth.distributions[item.truth.distributions["qkey"].isin(item.asked)]
        written = {path: path.parent.name for path in artifacts[dataset]}
        done = tracker.logged_keys(dataset)
        pending = []
        for f, frame in item.frames.items():
            row = by_label.get(f.label, {})
            recorded = run_metadata(frame)
            metrics = {k: row.get(k) for k in logged_metrics} | entry_metrics(item, f) | {
                k: v for k, v in (run_cost(f.path, parts_dir) if parts_dir else {}).items() if k in RUN_COST_METRICS}
            temperature = temperatures.get((dataset, f.model, f.steering)) if f.calibrated else None
            key = run_key(dataset, f.label, [*used_data, f.path], settings | {"temperature": temperature}, metrics)
            if key in done:
                skipped += 1
            else:
                pending.append((f, frame, recorded, metrics, key))
        # Rows with no predictions file (human references; uniform / overall-prior computed by evaluate):
        # their own runs, so the UI compares models with humans, baselines and the oracle ceiling.
        references = []
        file_labels = {f.label for f in item.frames}
        for row in item.board[~item.board["entry"].isin(file_labels)].to_dict("records"):
            key = run_key(dataset, row["entry"], used_data, settings, {k: row.get(k) for k in logged_metrics})
            if key in done:
                skipped += 1
            else:
                references.append((row, key))
        if not pending and not references:
            continue
        new += len(pending) + len(references)
        with tracker.dataset(dataset, {"opinionbench.dataset": dataset,
                                       "question_sample": question_sample_digest(item.asked)}):
            for f, frame, recorded, metrics, key in pending:
                _log_file_run(tracker, params, item, f, frame, recorded, metrics, key, temperatures,
                              evaluation_params, written, used_data, logged)
            for row, key in references:
                human = row["kind"] == "reference"
                tracker.log_run(run_name=row["entry"], params={"dataset": dataset, "kind": row["kind"], **evaluation_params},
                                metrics={k: row.get(k) for k in logged_metrics},
                                tags={"opinionbench.role": "human-reference" if human else "computed-baseline",
                                      "opinionbench.entry": row["entry"], "opinionbench.kind": row["kind"],
                                      "source": row["source"] if isinstance(row.get("source"), str) else "ours", RUN_KEY_TAG: key},
                                artifacts={}, used_files=used_data)
            tracker.log_artifacts(written)  # on the parent run
    return (f"MLflow: {new} runs logged to {tracker.uri} (execution {execution}); "
            f"{skipped} unchanged entries already logged")


def _log_file_run(tracker: Tracker, params: TrackingParams, item: DatasetEvaluation, f: PredictionFile,
                  frame: pd.DataFrame, recorded: dict, metrics: dict, key: str,
                  temperatures: dict[tuple[str, str, str], float], evaluation_params: dict,
                  written: dict[Path, str], used_data: list[Path], logged: pd.DataFrame) -> None:
    """The child run of one predictions file, linked to its model's logged model."""
    dataset = item.dataset
    baseline = is_baseline(f.method)
    run_params = {
        "dataset": dataset, "model": f.model, "model_id": _unique(frame, "model_id"),
        "model_revision": _unique(frame, "model_revision"), "method": f.method, "steering": f.steering,
        "calibrated": f.calibrated, "template_hash": _unique(frame, "template_hash"),
        "calibration_temperature": temperatures.get((dataset, f.model, f.steering)) if f.calibrated else None,
        "question_sample": question_sample_digest(frame["qkey"]), "n_questions": frame["qkey"].nunique(),
        "predictions_file": str(f.path),
    }
    run_params |= {k: v for k, v in recorded.items() if k not in RUN_COST_METRICS and k not in run_params}
    run_artifacts = dict(written)
    if params.log_predictions:
        run_artifacts[f.path] = "predictions"
    model_id = tracker.logged_model(dataset, f.model, {
        "model_id": run_params["model_id"], "model_revision": run_params["model_revision"],
        "backend": run_params.get("backend", f.method if baseline else "unknown"),
        "kind": f.kind, "source": f.source})
    tags = {"opinionbench.role": "model-run", "opinionbench.entry": f.label, "opinionbench.kind": f.kind,
            "source": f.source, RUN_KEY_TAG: key}
    if f.calibrated:
        tags["calibrated_by"] = f.calibrated_by
    tracker.log_run(run_name=f.label, params=run_params | evaluation_params, metrics=metrics, tags=tags,
                    artifacts=run_artifacts, data=logged, data_source=item.directory, data_name=dataset,
                    used_files=[*used_data, f.path], model_id=model_id,
                    table=question_table(item, f, frame, params.table_rows), inputs=source_inputs(f, frame, recorded))


def source_inputs(f: PredictionFile, frame: pd.DataFrame, recorded: dict) -> list[tuple[pd.DataFrame, str, str, str]]:
    """An imported run's source files as an MLflow dataset input (context `source`): where the
    predictions were made, file by file, with how many of this run's cells each one gave."""
    if f.source != PUBLISHED:
        return []
    if "source_file" in frame.columns and frame["source_file"].notna().any():
        files = frame["source_file"].dropna().value_counts().sort_index()
        table = pd.DataFrame({"source_file": files.index.astype(str), "cells": files.to_numpy()})
    else:  # our calibrate output of an imported run: the files are in its metadata
        table = pd.DataFrame({"source_file": [str(x) for x in recorded.get("source_files") or []]})
    if not len(table):
        return []
    root = str(recorded.get("source_root") or table["source_file"].iloc[0])
    return [(table, root, f"{f.model} ({recorded.get('importer') or 'published'})", "source")]


def _unique(frame: pd.DataFrame, column: str) -> str:
    values = sorted({str(v) for v in frame[column].dropna()}) if column in frame else []
    return ",".join(values) if values else "unknown"
