"""`calibrate` stage: temperature-scale every log-prob predictions file on held-out questions.

Per dataset, the questions that have predictions are split once (seeded, `calibrate.seed`), so
every model is calibrated and judged on the same questions. Per (model, steering), T is fitted
on the calibration questions and applied to the held-out ones, which are written to
`calibrate.out_dir/<dataset>/<model>/<method>/<steering>.parquet` (the predictions schema; the
methods whose capabilities say `calibratable`, i.e. `logprobs`);
`calibrate.report` records T and the held-out scores before/after for every file.
Imported runs (`published.out_dir/predictions`, stage import-predictions) are calibrated the
same way, beside the temperature scaling their source did in-sample; their output keeps the
import's provenance (`source: published`, the source files) in its metadata.
"""

from __future__ import annotations

import argparse
import shutil

from opinionbench.config import BuildParams, CalibrateParams, DatasetsParams, InferParams, load
from opinionbench.published import PublishedParams


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from opinionbench.inference.declared import declared_tables, keep_declared
    from opinionbench.inference.predictions import prediction_path, read_predictions, run_metadata, write_predictions
    from opinionbench.io import write_json
    from opinionbench.scoring.calibrate import apply_temperature, fit_predictions, report_entry, split_questions
    from opinionbench.scoring.evaluation import (
        PUBLISHED, calibratable, dataset_dir, discover, load_truth, question_sample_digest,
    )

    params = load(CalibrateParams, args.params)
    build, datasets = load(BuildParams, args.params), load(DatasetsParams, args.params)
    published = load(PublishedParams, args.params)
    infer = load(InferParams, args.params)
    ours, stale = keep_declared(discover(params.predictions_dir), params.predictions_dir, declared_tables(
        infer.dataset, infer.run, infer.methods, infer.steerings, infer.baselines))
    if stale:  # an earlier experiment's model: not fitted, so not evaluated either
        print(stale)
    found = ours + discover(published.out_dir / "predictions", source=PUBLISHED)
    files = [f for f in found if calibratable(f.method)]
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
            fitted = fit_predictions(frames[f], truth, f.steering, str(f.path), cal, params.objective)
            if fitted is None:
                print(f"not calibrated: {f.path}: no scored rows among the calibration questions")
                continue
            result, rows_scored = fitted
            heldout = frames[f][frames[f]["qkey"].isin(held)]
            record = report_entry(result, rows_scored)
            metadata = ({**run_metadata(frames[f]), "calibrated_by": "calibrate (held-out)",
                         "temperature": record["temperature"]} if f.source == PUBLISHED else None)
            write_predictions(apply_temperature(heldout, result.temperature),
                              prediction_path(f.dataset, f.model, f.method, f.steering, params.out_dir), metadata)
            if f.source == PUBLISHED:
                record["source"] = PUBLISHED
            entry["runs"].setdefault(f.model, {})[f.steering] = record
            if record["temperature_at_search_bound"]:
                print(f"note: {f.path}: T={result.temperature:.3g} is at the search bound: the fit prefers "
                      f"{'a flat (uniform)' if result.temperature > 1 else 'an argmax'} distribution")
            print(f"{dataset} {f.model} {f.method}/{f.steering}: T={result.temperature:.3f}; held-out TV "
                  f"{result.heldout_tv_before:.3f} -> {result.heldout_tv_after:.3f} ({result.n_heldout_questions} questions)")
    write_json(report, params.report)
    if not files:
        print(f"no log-prob predictions under {params.predictions_dir}: nothing to calibrate")
    return 0
