"""`validate-predictions` stage: Great Expectations over every predictions file, after inference.

Checks that answered rows carry valid probabilities aligned with their question's options and
that the verbalized parse failure rate stays under `validate.max_verbalized_failure_rate`;
writes Data Docs and `<out_dir>/predictions/summary.json` (DVC metrics) pass or fail, and exits
1 on a failed expectation.
"""

from __future__ import annotations

import argparse

from opinionbench.config import ValidateParams, load


def run(args: argparse.Namespace) -> int:
    from opinionbench.io import write_json
    from opinionbench.tables import read_dataset
    from opinionbench.validation import derive
    from opinionbench.validation.runner import run_suites
    from opinionbench.validation.summary import format_summary, prediction_counts, summary_dict

    params = load(ValidateParams, args.params)
    questions, _ = read_dataset(params.out_dir / "dataset")  # the validated build that inference reads
    predictions = derive.read_prediction_files(params.predictions_dir)
    rates = derive.failure_rates(predictions)
    frames = {"predictions": derive.prediction_checks(predictions, questions), "prediction_files": rates}
    out = params.out_dir / "predictions"
    report = run_suites(frames, params.suites_dir, params.expectation_parameters(), out / "docs")
    counts = prediction_counts(predictions, rates)
    write_json(summary_dict(report, None, counts), out / "summary.json")
    print(format_summary(report, None, {k: v for k, v in counts.items() if k != "failure_rate_by_file"}))
    verbalized = rates[rates["method"] == "verbalized"]
    if len(verbalized):
        print(f"verbalized parse failure rate: {verbalized['failed'].sum() / verbalized['rows'].sum():.1%} "
              f"over {len(verbalized)} files (max per file {verbalized['failure_rate'].max():.1%})")
    return 0 if report.success else 1
