"""`validate` stage: Great Expectations over the build; what passes is the dataset inference reads.

Writes, pass or fail: Data Docs HTML (`<out_dir>/docs/`), `<out_dir>/summary.json` (DVC
metrics) and the validated dataset (`<out_dir>/dataset/`: the build minus the explained,
counted exclusions). A failed expectation prints a one-screen summary naming it with sample
rows, and the command exits 1 so that `dvc repro` stops before inference.
"""

from __future__ import annotations

import argparse

from opinionbench.config import QuestionnaireParams, ValidateParams, load


def run(args: argparse.Namespace) -> int:
    from opinionbench.io import write_json, write_parquet
    from opinionbench.tables import read_dataset, read_table
    from opinionbench.validation import derive
    from opinionbench.validation.exclusions import apply_exclusions, load_rules
    from opinionbench.validation.runner import run_suites
    from opinionbench.validation.summary import format_summary, summary_dict

    params, questionnaire = load(ValidateParams, args.params), load(QuestionnaireParams, args.params)
    questions, distributions = read_dataset(params.build_dir)
    read_table(params.build_dir / "distributions.parquet", ["n_eff", "refusal_rate", "n"])
    kept_q, kept_d, exclusions = apply_exclusions(questions, distributions, load_rules(params.exclusions),
                                                    params.min_n_eff, params.max_options)
    frames = {
        "questions": derive.question_checks(kept_q, kept_d),
        "distributions": derive.distribution_checks(kept_d, kept_q),
        "provenance": derive.provenance_checks(kept_q, questionnaire.correction.cache_dir),
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
