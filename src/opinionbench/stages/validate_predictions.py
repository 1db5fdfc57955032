"""`validate-predictions` stage: Great Expectations over every predictions file, after inference.

Checks the predictions files params declare (inference/declared.py; a file nothing declares is
named and left out, as `evaluate` leaves it out): answered rows carry valid probabilities aligned
with their question's options, no file's failed rows exceed `validate.max_failure_rate` (any
method), and the verbalized parse failure rate stays under `validate.max_verbalized_failure_rate`;
writes Data Docs and `<out_dir>/predictions/summary.json` (DVC metrics) pass or fail, and exits
1 on a failed expectation.
"""

from __future__ import annotations

import argparse

from opinionbench.config import InferParams, ValidateParams, load


def run(args: argparse.Namespace) -> int:
    from opinionbench.elicit import with_capability
    from opinionbench.inference.declared import declared_tables, split_predictions
    from opinionbench.io import write_json
    from opinionbench.tables import read_dataset
    from opinionbench.validation import derive
    from opinionbench.validation.runner import run_suites
    from opinionbench.validation.summary import format_summary, prediction_counts, summary_dict

    params, infer = load(ValidateParams, args.params), load(InferParams, args.params)
    questions, _ = read_dataset(params.out_dir / "dataset")  # the validated build that inference reads
    files = split_predictions(params.predictions_dir, declared_tables(
        infer.dataset, infer.run, infer.methods, infer.steerings, infer.baselines))
    for note in files.notes():
        print(note)
    predictions = derive.read_prediction_files(params.predictions_dir, files.declared)
    rates = derive.failure_rates(predictions, with_capability(states_distribution=True))
    frames = {"predictions": derive.prediction_checks(predictions, questions), "prediction_files": rates}
    out = params.out_dir / "predictions"
    report = run_suites(frames, params.suites_dir, params.expectation_parameters(), out / "docs")
    counts = prediction_counts(predictions, rates)
    left_out = {"stale_prediction_files": [str(p.relative_to(files.root)) for p in files.stale]}
    write_json(summary_dict(report, None, counts | left_out), out / "summary.json")
    print(format_summary(report, None, {k: v for k, v in counts.items() if k != "failure_rate_by_file"}))
    verbalized = rates[rates["verbalized_failure_rate"].notna()]  # the methods stating a distribution
    if len(verbalized):
        print(f"verbalized parse failure rate: {verbalized['failed'].sum() / verbalized['rows'].sum():.1%} "
              f"over {len(verbalized)} files (max per file {verbalized['failure_rate'].max():.1%})")
    return 0 if report.success else 1
