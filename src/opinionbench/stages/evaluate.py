"""`evaluate` stage: every predictions file found → leaderboards, DVC metrics/plots, figures, MLflow runs.

Predictions are discovered, not configured: each `<dataset>/<model>/<method>/<steering>.parquet`
under `evaluate.predictions_dir` (and the temperature-scaled ones under
`evaluate.calibrated_dir`) is scored, so adding a model to the infer matrix needs no change here.
"""

from __future__ import annotations

import argparse
import shutil

from opinionbench.config import BuildParams, DatasetsParams, EvaluateParams, TrackingParams, load


def run(args: argparse.Namespace) -> int:
    from opinionbench.io import write_text
    from opinionbench.scoring import report
    from opinionbench.scoring.calibrate import read_temperatures
    from opinionbench.scoring.evaluation import dataset_dir, discover
    from opinionbench.scoring.html_report import write_index
    from opinionbench.scoring.leaderboard import evaluate_dataset

    params, build = load(EvaluateParams, args.params), load(BuildParams, args.params)
    datasets, tracking = load(DatasetsParams, args.params), load(TrackingParams, args.params)
    files = discover(params.predictions_dir) + discover(params.calibrated_dir, calibrated=True)
    temperatures = read_temperatures(params.temperatures)
    out = params.out_dir
    for sub in ("leaderboards", "figures", "plots"):
        shutil.rmtree(out / sub, ignore_errors=True)  # no stale file of a model no longer predicted
        (out / sub).mkdir(parents=True, exist_ok=True)

    evaluations, artifacts = [], {}
    for dataset in sorted({f.dataset for f in files}):
        result = evaluate_dataset(
            dataset, dataset_dir(dataset, datasets.out_dir, build.out_dir), [f for f in files if f.dataset == dataset],
            temperatures, n_boot=params.bootstrap, seed=params.seed, confidence=params.confidence,
            reliability_bins=params.reliability_bins)
        artifacts[dataset] = report.write_dataset_report(out, result, params.confidence)
        print(f"{dataset}: {len(result.frames)} predictions files, {len(result.asked)} questions -> "
              f"{artifacts[dataset][1]}")
        evaluations.append(result)

    leaderboards = {e.dataset: e.board for e in evaluations}
    report.write_dvc_files(out, leaderboards, evaluations)
    index = write_index(out, evaluations, artifacts, _context(args.params, build))
    print(f"report: {index}")
    write_text(report.leaderboards_index(leaderboards), out / "leaderboards" / "README.md")
    if not files:
        print(f"no predictions under {params.predictions_dir}: empty leaderboards (run the infer stages first)")
    if tracking.enabled and evaluations:
        from opinionbench.tracking import log_evaluation

        settings = params.model_dump(mode="json", include={"bootstrap", "confidence", "seed", "reliability_bins"})
        print(log_evaluation(tracking, evaluations, artifacts, temperatures, args.params, settings))
    return 0


def _context(params_path, build: BuildParams):
    """What the report page says about the data: build report, validation summary, text sources, reviews."""
    from opinionbench.config import QuestionnaireParams, ValidateParams
    from opinionbench.questionnaire.review import load_reviews
    from opinionbench.scoring.html_report import RunContext

    validate, questionnaire = load(ValidateParams, params_path), load(QuestionnaireParams, params_path)
    return RunContext(build_report=build.out_dir / "build_report.json",
                      validation_summary=validate.out_dir / "summary.json",
                      questions=build.out_dir / "questions.parquet",
                      reviews=len(load_reviews(questionnaire.reviews)))
