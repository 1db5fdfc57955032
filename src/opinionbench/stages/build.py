"""`build` stage: waves (.sav) → data/build/{questions,distributions}.parquet + report/metrics."""

from __future__ import annotations

import argparse
import json

from opinionbench.config import BuildParams, DataParams, QuestionnaireParams, load
from opinionbench.io import write_json, write_parquet
from opinionbench.survey.build import build_waves
from opinionbench.survey.details import load_survey_details


def run(args: argparse.Namespace) -> int:
    data, build = load(DataParams, args.params), load(BuildParams, args.params)
    questionnaire = load(QuestionnaireParams, args.params)
    files = data.wave_files()
    result = build_waves(files, workers=build.workers, details=load_survey_details(data.survey_details))
    out = build.out_dir
    questions = _with_questionnaire_text(result.questions, questionnaire)
    write_parquet(questions, out / "questions.parquet")
    write_parquet(result.distributions, out / "distributions.parquet")
    report = result.report()
    write_json(report, out / "build_report.json")
    metrics = {k: report[k] for k in ("waves_built", "questions", "cells")} | {"waves_failed": len(report["waves_failed"])}
    write_json(metrics, out / "build_metrics.json")
    for name, reason in report["waves_failed"].items():
        print(f"wave not built: {reason}")
    print(
        f"built {report['waves_built']}/{len(files)} waves: {report['questions']} questions, "
        f"{report['cells']} (question, group) cells -> {out}"
    )
    print("skipped columns by reason: " + json.dumps(report["skipped_columns_by_reason"]))
    print(f"question text: {int((questions['text_source'] == 'questionnaire').sum())} from questionnaires, "
          f"{int((questions['text_source'] == 'codebook').sum())} from the codebook")
    return 0 if report["waves_built"] else 2


def _with_questionnaire_text(questions, params: QuestionnaireParams):
    """Wording from the corrected questionnaires (where accepted), reviews applied last, provenance added."""
    from opinionbench.questionnaire.errors import printed_warnings
    from opinionbench.questionnaire.provenance import attach_questionnaire_text, corrected_path

    files = {w: corrected_path(params.out_dir, w) for w in params.pdfs if w in set(questions["wave"])}
    with printed_warnings():
        return attach_questionnaire_text(questions, files, params.reviews)
