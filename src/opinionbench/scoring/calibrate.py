"""Temperature scaling of log-prob distributions, fitted on held-in questions only.

A model's next-token distribution over option letters is usually far too sharp (or, for tiny
models, too flat) to be read as a population's opinion distribution; the distributional
alignment benchmark therefore compares log-prob predictions only after temperature scaling.
One temperature T per (model, steering), fitted on a seeded split of the *questions* (never of
rows: a question's groups must not leak between the split halves), then applied to the
held-out questions, where before/after is reported.

Temperature scaling of p: softmax(log p / T). T > 1 flattens, T < 1 sharpens; zero-probability
options (and the zero padding of `opinionbench.scoring.metrics.pad_rows`) stay at zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

from opinionbench.io import read_structured
from opinionbench.scoring.evaluation import PredictionFile, Truth, calibratable, pair_predictions
from opinionbench.scoring.metrics import pad_rows, total_variation

Objective = Literal["tv", "cross_entropy"]
LOG_T_BOUNDS = (-5.0, 5.0)  # T in [0.0067, 148]: far beyond any useful temperature
_EPS = 1e-12


def temperature_scale(probs: ArrayLike, temperature: float) -> np.ndarray:
    """softmax(log p / T) row-wise; zeros stay zeros."""
    p = np.asarray(probs, dtype=float)
    single = p.ndim == 1
    p = p[None, :] if single else p
    with np.errstate(divide="ignore"):
        logits = np.log(p) / float(temperature)
    logits -= np.max(logits, axis=1, keepdims=True)
    scaled = np.exp(logits)
    scaled /= scaled.sum(axis=1, keepdims=True)
    return scaled[0] if single else scaled


def objective_value(pred: np.ndarray, target: np.ndarray, objective: Objective) -> float:
    """Mean TV, or mean cross-entropy −Σ q·log p̂ (p̂ clipped so a missed option costs log 1e12)."""
    if objective == "tv":
        return float(np.mean(total_variation(pred, target)))
    if objective == "cross_entropy":
        return float(np.mean(-(target * np.log(np.clip(pred, _EPS, 1.0))).sum(axis=1)))
    raise ValueError(f"unknown calibration objective {objective!r} (tv | cross_entropy)")


def fit_temperature(pred: ArrayLike, target: ArrayLike, objective: Objective = "tv") -> float:
    """The T minimising the mean objective of temperature_scale(pred, T) against target.

    Searched over log T (bounded Brent), so the optimiser treats halving and doubling alike.
    """
    p = np.asarray(pred, dtype=float)
    q = np.asarray(target, dtype=float)
    if p.shape != q.shape or p.ndim != 2 or len(p) == 0:
        raise ValueError(f"need matching non-empty (n, k) matrices, got {p.shape} and {q.shape}")
    result = minimize_scalar(lambda log_t: objective_value(temperature_scale(p, np.exp(log_t)), q, objective),
                             bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def split_questions(qkeys: Sequence[str], calibration_fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """(calibration, held-out) question sets: seeded, independent of row order, both non-empty when possible."""
    unique = sorted(set(qkeys))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_cal = int(round(calibration_fraction * len(unique)))
    if len(unique) >= 2:
        n_cal = min(max(n_cal, 1), len(unique) - 1)
    cal = {unique[i] for i in order[:n_cal]}
    return cal, set(unique) - cal


@dataclass(frozen=True)
class CalibrationResult:
    temperature: float
    objective: str
    n_calibration_questions: int
    n_heldout_questions: int
    heldout_tv_before: float
    heldout_tv_after: float
    heldout_objective_before: float
    heldout_objective_after: float


def calibrate(pred: np.ndarray, target: np.ndarray, qkeys: Sequence[str], calibration: set[str],
              objective: Objective = "tv") -> tuple[CalibrationResult, np.ndarray]:
    """Fit T on the calibration questions' rows; return the result and all rows temperature-scaled."""
    qk = np.asarray(qkeys)
    in_cal = np.isin(qk, list(calibration))
    if not in_cal.any():
        raise ValueError("no prediction rows fall in the calibration split")
    temperature = fit_temperature(pred[in_cal], target[in_cal], objective)
    scaled = temperature_scale(pred, temperature)
    held = ~in_cal
    nan = float("nan")
    result = CalibrationResult(
        temperature=temperature,
        objective=objective,
        n_calibration_questions=int(len(set(qk[in_cal]))),
        n_heldout_questions=int(len(set(qk[held]))),
        heldout_tv_before=float(np.mean(total_variation(pred[held], target[held]))) if held.any() else nan,
        heldout_tv_after=float(np.mean(total_variation(scaled[held], target[held]))) if held.any() else nan,
        heldout_objective_before=objective_value(pred[held], target[held], objective) if held.any() else nan,
        heldout_objective_after=objective_value(scaled[held], target[held], objective) if held.any() else nan,
    )
    return result, scaled


def reliability_curve(pred: Sequence[ArrayLike], target: Sequence[ArrayLike], bins: int = 10) -> pd.DataFrame:
    """Reliability of option probabilities: predicted share vs the human share, in equal-width bins.

    Every (row, option) cell is a forecast "this option gets p of the answers"; a calibrated
    model's cells with p ≈ 0.3 get 30 % of the human answers on average (the diagonal). Rows are
    given unpadded (one vector per question × group), so padding never counts as a forecast.
    """
    p = np.concatenate([np.asarray(r, dtype=float).ravel() for r in pred]) if len(pred) else np.empty(0)
    q = np.concatenate([np.asarray(r, dtype=float).ravel() for r in target]) if len(target) else np.empty(0)
    if p.shape != q.shape:
        raise ValueError(f"predictions and targets differ in option count ({p.size} vs {q.size} cells)")
    keep = ~(np.isnan(p) | np.isnan(q))
    p, q = p[keep], q[keep]
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "predicted": p, "observed": q})
    out = frame.groupby("bin").agg(predicted=("predicted", "mean"), observed=("observed", "mean"),
                                   count=("predicted", "size")).reset_index()
    out["bin_low"], out["bin_high"] = edges[out["bin"]], edges[out["bin"] + 1]
    return out


def fit_predictions(predictions: pd.DataFrame, truth: Truth, steering: str, source: str, calibration: set[str],
                    objective: Objective) -> tuple[CalibrationResult, int] | None:
    """T of one predictions file, fitted on its rows among the calibration questions, with the
    number of rows scored; None when none of its scored rows is a calibration question."""
    pairs = pair_predictions(predictions, truth, steering, source)
    if pairs.empty or not set(pairs["qkey"]) & calibration:
        return None
    result, _ = calibrate(pad_rows(pairs["pred"]), pad_rows(pairs["probs"]), pairs["qkey"].tolist(), calibration,
                          objective)
    return result, len(pairs)


def apply_temperature(predictions: pd.DataFrame, temperature: float) -> pd.DataFrame:
    """The predictions with T applied to every answered row; failed rows keep their empty `probs`."""
    frame = predictions.copy()
    probs = [np.asarray(p, dtype=float) for p in frame["probs"]]
    ok = np.flatnonzero(~frame["failed"].astype(bool).to_numpy())
    if ok.size:
        scaled = temperature_scale(pad_rows([probs[i] for i in ok]), temperature)
        for j, i in enumerate(ok):
            probs[i] = scaled[j, : len(probs[i])]
    frame["probs"] = [[float(x) for x in p] for p in probs]
    return frame


def at_search_bound(temperature: float) -> bool:
    """A T at either end of the search range is the fit asking for uniform or argmax, not a real optimum."""
    return bool(min(abs(np.log(temperature) - b) for b in LOG_T_BOUNDS) < 1e-3)


def report_entry(result: CalibrationResult, rows_scored: int) -> dict:
    """One file's record in the calibrate report (`calibrate.report`)."""
    return {**{k: (round(v, 6) if isinstance(v, float) else v) for k, v in result.__dict__.items() if k != "objective"},
            "temperature_at_search_bound": at_search_bound(result.temperature), "rows_scored": int(rows_scored)}


def read_temperatures(path: Path) -> dict[tuple[str, str, str], float]:
    """(dataset, model, steering) → T from the calibrate report; empty when nothing was calibrated."""
    if not Path(path).exists():
        return {}
    report = read_structured(path, kind="json")
    return {(d, m, s): float(r["temperature"]) for d, entry in report.get("datasets", {}).items()
            for m, by_steering in entry.get("runs", {}).items() for s, r in by_steering.items()}


CALIBRATION_COLUMNS = ["model", "steering", "calibrated_by", "temperature", "temperature_degenerate",
                       "heldout_questions", "tv_before", "rep_before", "tv_after", "rep_after"]


def calibration_table(scored: dict[PredictionFile, pd.DataFrame], frames: dict[PredictionFile, pd.DataFrame],
                      truth: Truth, temperatures: dict[tuple[str, str, str], float],
                      bins: int) -> tuple[pd.DataFrame, dict[str, tuple[pd.DataFrame, pd.DataFrame, float]]]:
    """Before/after on the held-out questions, and the reliability curves, per calibrated file.

    "Before" is the raw file restricted to the questions its calibrated twin was scored on, so
    both sides of every comparison cover the same held-out questions. An imported run the
    source scaled itself (`calibrated_by` in-sample: T fitted on the very questions scored, T
    not published) is listed beside our held-out fit of the same raw log-probs. A T at the
    search bound is flagged `temperature_degenerate` and not given as a temperature.
    """
    rows, curves = [], {}
    raw = {(f.model, f.method, f.steering): f for f in scored if calibratable(f.method) and not f.calibrated}
    for f, after in scored.items():
        if not f.calibrated or (f.model, f.method, f.steering) not in raw:
            continue
        before_file = raw[(f.model, f.method, f.steering)]
        held = set(frames[f]["qkey"])
        before = scored[before_file][scored[before_file]["qkey"].isin(held)]
        temperature = temperatures.get((f.dataset, f.model, f.steering)) if f.calibrated_by != "in-sample" else None
        degenerate = temperature is not None and at_search_bound(temperature)
        row = {"model": f.model, "steering": f.steering, "calibrated_by": f.calibrated_by or None,
               "temperature": None if degenerate else temperature, "temperature_degenerate": degenerate,
               "heldout_questions": len(held)}
        for name, frame in (("before", before), ("after", after)):
            row[f"tv_{name}"] = float(frame["tv"].mean()) if len(frame) else float("nan")
            row[f"rep_{name}"] = float(frame["representativeness"].mean()) if len(frame) else float("nan")
        rows.append(row)
        pairs_before = pair_predictions(frames[before_file][frames[before_file]["qkey"].isin(held)], truth,
                                        f.steering, str(before_file.path))
        pairs_after = pair_predictions(frames[f], truth, f.steering, str(f.path))
        if len(pairs_before) and len(pairs_after):
            suffix = " · in-sample (source)" if f.calibrated_by == "in-sample" else ""
            curves[f"{f.model} · {f.steering}{suffix}"] = (
                reliability_curve(list(pairs_before["pred"]), list(pairs_before["probs"]), bins),
                reliability_curve(list(pairs_after["pred"]), list(pairs_after["probs"]), bins),
                temperature if temperature is not None else float("nan"))
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS), curves
