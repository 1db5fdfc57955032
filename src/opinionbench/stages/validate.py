"""`validate` stage: Great Expectations over the build (and, with --predictions, over predictions).

Writes, pass or fail: Data Docs HTML (`<out_dir>/docs/`), `<out_dir>/summary.json` (DVC
metrics) and, for the build, the validated dataset (`<out_dir>/dataset/`: the build minus the
explained, counted exclusions). A failed expectation prints a one-screen summary naming it with
sample rows, and the command exits 1 so that `dvc repro` stops before inference.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from opinionbench.config import QuestionnaireParams, ValidateParams, load_params
from opinionbench.errors import OpinionBenchError
from opinionbench.io import write_json, write_parquet
from opinionbench.tables import PREDICTION_COLUMNS, read_dataset, read_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--predictions", action="store_true",
                        help="validate every predictions parquet under validate.predictions_dir instead of the build")


def run(args: argparse.Namespace) -> int:
    params, questionnaire = load_params("validate", "questionnaire", path=args.params)
    assert isinstance(params, ValidateParams) and isinstance(questionnaire, QuestionnaireParams)
    if getattr(args, "predictions", False):
        return validate_predictions(params)
    return validate_build(params, questionnaire.correction.cache_dir)


def validate_build(params: ValidateParams, llm_cache_dir: Path) -> int:
    from opinionbench.validation import derive
    from opinionbench.validation.exclusions import apply_exclusions, load_rules
    from opinionbench.validation.runner import run_suites
    from opinionbench.validation.summary import format_summary, summary_dict

    questions, distributions = read_dataset(params.build_dir)
    read_table(params.build_dir / "distributions.parquet", ["n_eff", "refusal_rate", "n"])
    kept_q, kept_d, exclusions = apply_exclusions(questions, distributions, load_rules(params.exclusions),
                                                    params.min_n_eff, params.max_options)
    frames = {
        "questions": derive.question_checks(kept_q, kept_d),
        "distributions": derive.distribution_checks(kept_d, kept_q),
        "provenance": derive.provenance_checks(kept_q, llm_cache_dir),
    }
    out = params.out_dir
    report = run_suites(frames, params.suites_dir, params.expectation_parameters(), out / "docs")
    counts = {"questions_built": len(questions), "questions_validated": len(kept_q),
              "cells_built": len(distributions), "cells_validated": len(kept_d)}
    write_parquet(kept_q, out / "dataset" / "questions.parquet")
    write_parquet(kept_d, out / "dataset" / "distributions.parquet")
    write_json(summary_dict(report, exclusions, counts), out / "summary.json")
    print(format_summary(report, exclusions, counts))
    return 0 if report.success else 1


def read_predictions(directory: Path) -> pd.DataFrame:
    """Every predictions parquet under `directory`, with the file it came from."""
    files = sorted(Path(directory).rglob("*.parquet"))
    if not files:
        raise OpinionBenchError(f"{directory}: no predictions parquet files (run inference first)")
    frames = []
    for path in files:
        frame = read_table(path, [c for c in PREDICTION_COLUMNS if c in ("qkey", "attribute", "group", "probs",
                                                                         "failed", "error", "method")])
        frames.append(frame.assign(file=str(path.relative_to(directory))))
    return pd.concat(frames, ignore_index=True)


def validate_predictions(params: ValidateParams) -> int:
    from opinionbench.validation import derive
    from opinionbench.validation.runner import run_suites
    from opinionbench.validation.summary import format_summary, summary_dict

    questions, _ = read_dataset(params.out_dir / "dataset")  # the validated build that inference reads
    predictions = read_predictions(params.predictions_dir)
    rates = derive.failure_rates(predictions)
    frames = {"predictions": derive.prediction_checks(predictions, questions), "prediction_files": rates}
    out = params.out_dir / "predictions"
    report = run_suites(frames, params.suites_dir, params.expectation_parameters(), out / "docs")
    verbalized = rates[rates["method"] == "verbalized"]
    extra = {
        "prediction_files": int(len(rates)),
        "verbalized_failure_rate": (round(float(verbalized["failed"].sum() / verbalized["rows"].sum()), 4)
                                    if len(verbalized) else None),
        "predictions": int(len(predictions)),
        "failure_rate_by_file": {f"{r.file} ({r.method})": round(float(r.failure_rate), 4) for r in rates.itertuples()},
    }
    write_json(summary_dict(report, None, extra), out / "summary.json")
    print(format_summary(report, None, {k: v for k, v in extra.items() if k != "failure_rate_by_file"}))
    if len(verbalized):
        print(f"verbalized parse failure rate: {verbalized['failed'].sum() / verbalized['rows'].sum():.1%} "
              f"over {len(verbalized)} files (max per file {verbalized['failure_rate'].max():.1%})")
    return 0 if report.success else 1
