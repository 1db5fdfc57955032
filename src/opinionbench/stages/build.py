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
    release_text = _release_text(build, args.params)  # before the build: a config error costs nothing
    result = build_waves(files, workers=build.workers, details=load_survey_details(data.survey_details),
                         answer_classes=build.answer_classes)
    out = build.out_dir
    questions = _with_questionnaire_text(result.questions, questionnaire, release_text)
    write_parquet(questions, out / "questions.parquet")
    write_parquet(result.distributions, out / "distributions.parquet")
    report = result.report()
    write_json(report, out / "build_report.json")
    metrics = {k: report[k] for k in ("waves_built", "questions", "cells")} | {
        "waves_failed": len(report["waves_failed"]),
        "nonsubstantive_labels": len(report["nonsubstantive_labels"]),
    }
    write_json(metrics, out / "build_metrics.json")
    for name, reason in report["waves_failed"].items():
        print(f"wave not built: {reason}")
    print(
        f"built {report['waves_built']}/{len(files)} waves: {report['questions']} questions, "
        f"{report['cells']} (question, group) cells -> {out}"
    )
    print("skipped columns by reason: " + json.dumps(report["skipped_columns_by_reason"]))
    sources = questions["text_source"].value_counts()
    print("question text: " + ", ".join(f"{int(n)} from the {s}" for s, n in sources.items()))
    return 0 if report["waves_built"] else 2


def _release_text(build: BuildParams, params_path) -> dict[str, dict]:
    """Audit rows whose release wording replaces our label (build.release_text), by qkey."""
    if not build.release_text:
        return {}
    from opinionbench.config import AuditParams, ConfigError
    from opinionbench.tables import read_table

    audit = load(AuditParams, params_path)
    if audit.release is None:
        raise ConfigError("params.yaml: build.release_text: needs audit.release (the release to take wording from)")
    table = read_table(audit.out_dir / "release.parquet", ["qkey", "status", "reason", "their_question"])
    chosen = table[table["status"].isin(build.release_text)]
    return {r["qkey"]: r | {"source": audit.release} for r in chosen.to_dict("records")}


def _with_questionnaire_text(questions, params: QuestionnaireParams, release_text: dict[str, dict]):
    """Wording from the corrected questionnaires (where accepted), else the audited release's
    where chosen, reviews applied last, provenance added."""
    from opinionbench.questionnaire.errors import printed_warnings
    from opinionbench.questionnaire.provenance import attach_questionnaire_text, corrected_path

    files = {w: corrected_path(params.out_dir, w) for w in params.pdfs if w in set(questions["wave"])}
    with printed_warnings():
        return attach_questionnaire_text(questions, files, params.reviews, release_text)
