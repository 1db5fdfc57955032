"""`calibrate` stage: temperature-scale every `logprobs` predictions file on held-out questions.

Per dataset, the questions that have predictions are split once (seeded, `calibrate.seed`), so
every model is calibrated and judged on the same questions. Per (model, steering), T is fitted
on the calibration questions and applied to the held-out ones, which are written to
`calibrate.out_dir/<dataset>/<model>/logprobs/<steering>.parquet` (the predictions schema);
`calibrate.report` records T and the held-out scores before/after for every file.
"""

from __future__ import annotations

import argparse
import shutil

import numpy as np
from tqdm import tqdm

from opinionbench.config import BuildParams, CalibrateParams, DatasetsParams, load_params
from opinionbench.io import write_json


def run(args: argparse.Namespace) -> int:
    from opinionbench.calibrate import LOG_T_BOUNDS, calibrate, split_questions, temperature_scale
    from opinionbench.evaluation import dataset_dir, discover, load_truth, pair_predictions, question_sample_digest
    from opinionbench.inference.predictions import prediction_path, read_predictions, write_predictions
    from opinionbench.metrics import pad_rows

    params, build, datasets = load_params("calibrate", "build", "datasets", path=args.params)
    assert isinstance(params, CalibrateParams) and isinstance(build, BuildParams) and isinstance(datasets, DatasetsParams)
    files = [f for f in discover(params.predictions_dir) if f.method == "logprobs"]
    if params.out_dir.exists():
        shutil.rmtree(params.out_dir)  # stale files of models no longer configured must not be evaluated
    params.out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"objective": params.objective, "calibration_fraction": params.calibration_fraction,
                    "seed": params.seed, "datasets": {}}
    for dataset in sorted({f.dataset for f in files}):
        truth = load_truth(dataset, dataset_dir(dataset, datasets.out_dir, build.out_dir))
        mine = [f for f in files if f.dataset == dataset]
        frames = {f: read_predictions(f.path) for f in mine}
        qkeys = sorted({q for frame in frames.values() for q in frame["qkey"]})
        cal, held = split_questions(qkeys, params.calibration_fraction, params.seed)
        entry = report["datasets"].setdefault(dataset, {
            "calibration_questions": sorted(cal), "heldout_questions": sorted(held),
            "heldout_sample": question_sample_digest(held), "runs": {}})
        for f in tqdm(mine, desc=f"calibrate {dataset}", unit="file"):
            pairs = pair_predictions(frames[f], truth, f.steering, str(f.path))
            if pairs.empty or not set(pairs["qkey"]) & cal:
                print(f"not calibrated: {f.path}: no scored rows among the calibration questions")
                continue
            widths = pairs["pred"].map(len).to_numpy()
            result, _ = calibrate(pad_rows(pairs["pred"]), pad_rows(pairs["probs"]), pairs["qkey"].tolist(), cal,
                                  params.objective)
            frame = frames[f]
            frame = frame[frame["qkey"].isin(held)].copy()
            probs = [np.asarray(p, dtype=float) for p in frame["probs"]]
            ok = np.flatnonzero(~frame["failed"].astype(bool).to_numpy())
            if ok.size:
                scaled = temperature_scale(pad_rows([probs[i] for i in ok]), result.temperature)
                for j, i in enumerate(ok):
                    probs[i] = scaled[j, : len(probs[i])]
            frame["probs"] = [[float(x) for x in p] for p in probs]
            out = prediction_path(f.dataset, f.model, f.method, f.steering, params.out_dir)
            write_predictions(frame, out)
            at_bound = min(abs(np.log(result.temperature) - b) for b in LOG_T_BOUNDS) < 1e-3
            entry["runs"].setdefault(f.model, {})[f.steering] = {
                **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in result.__dict__.items() if k != "objective"},
                "temperature_at_search_bound": bool(at_bound), "rows_scored": int(len(widths))}
            if at_bound:
                print(f"note: {f.path}: T={result.temperature:.3g} is at the search bound: the fit prefers "
                      f"{'a flat (uniform)' if result.temperature > 1 else 'an argmax'} distribution")
            print(f"{dataset} {f.model} logprobs/{f.steering}: T={result.temperature:.3f}; held-out TV "
                  f"{result.heldout_tv_before:.3f} -> {result.heldout_tv_after:.3f} ({result.n_heldout_questions} questions)")
    write_json(report, params.report)
    if not files:
        print(f"no logprobs predictions under {params.predictions_dir}: nothing to calibrate")
    return 0
