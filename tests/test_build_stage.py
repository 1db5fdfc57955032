"""The `build` command end to end on the sample: outputs, report, metrics, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import yaml

from opinionbench.cli import main


def write_params(tmp_path: Path, waves_dir: Path, **build) -> Path:
    params = {"data": {"waves_dir": str(waves_dir), "waves": [], "survey_details": None},
              "build": {"workers": 1, "out_dir": str(tmp_path / "data" / "build")} | build}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_build_command_writes_tables_report_and_metrics(tmp_path, sample_sav, capsys):
    params = write_params(tmp_path, sample_sav.parent)
    assert main(["--params", str(params), "build"]) == 0
    out = tmp_path / "data" / "build"
    questions = pd.read_parquet(out / "questions.parquet")
    dists = pd.read_parquet(out / "distributions.parquet")
    assert len(questions) == 12
    assert set(questions["text_source"]) <= {"codebook", "questionnaire", "reviewed"}
    assert set(dists["qkey"]) == set(questions["qkey"])
    report = json.loads((out / "build_report.json").read_text())
    assert json.loads((out / "build_metrics.json").read_text()) == {
        "waves_built": 1, "questions": 12, "cells": len(dists), "waves_failed": 0,
        "nonsubstantive_labels": len(report["nonsubstantive_labels"]),
    }
    # every label the answer-class rule took out, with its class and question count (for review)
    removed = {r["label"]: r for r in report["nonsubstantive_labels"]}
    assert removed["Refused"]["class"] == "refused" and removed["Refused"]["questions"] == 12
    assert removed["Don't know"]["class"] == "dont_know"  # CLIMATE_W900's code 98: volunteered
    assert report["skipped_columns"]["W900"]["NUMHH_W900"].startswith("numeric")
    printed = capsys.readouterr().out
    assert "built 1/1 waves: 12 questions" in printed


def test_a_bad_wave_is_one_line_and_the_others_still_build(tmp_path, sample_sav, capsys):
    waves = tmp_path / "waves"
    waves.mkdir()
    shutil.copy(sample_sav, waves / "W900.sav")
    (waves / "W901.sav").write_bytes(sample_sav.read_bytes()[:5000])  # truncated
    params = write_params(tmp_path, waves)
    assert main(["--params", str(params), "build"]) == 0
    printed = capsys.readouterr().out
    lines = [l for l in printed.splitlines() if l.startswith("wave not built")]
    assert len(lines) == 1 and "W901.sav: not a readable SPSS .sav file" in lines[0]
    assert "built 1/2 waves" in printed


def test_bad_params_name_the_key(tmp_path, sample_sav, capsys):
    params = write_params(tmp_path, sample_sav.parent, workers="two")
    assert main(["--params", str(params), "build"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "build.workers" in err and len(err.splitlines()) == 1


def test_opinionqa_convention_keeps_every_answer_but_refused(tmp_path, sample_sav):
    params = write_params(tmp_path, sample_sav.parent, answer_classes="opinionqa")
    assert main(["--params", str(params), "build"]) == 0
    questions = pd.read_parquet(tmp_path / "data" / "build" / "questions.parquet").set_index("qkey")
    assert list(questions.loc["CLIMATE_W900", "options"])[-1] == "Don't know"
    assert list(questions.loc["CLIMATE_W900", "refusal_options"]) == ["Refused"]


def test_release_wording_replaces_a_cut_label_with_provenance(tmp_path, sample_sav, capsys):
    """audit → build with build.release_text: the release's wording, text_source `release`, the audit in provenance."""
    from opinionbench.audit.sav import read_codebook

    gun = read_codebook(sample_sav).questions["GUNLAWS_W900"]
    longer = gun.question + " or kept as they are now, thinking about the whole country"
    release = tmp_path / "release.json"
    release.write_text(json.dumps({"W900": {"GUNLAWS": {"question": longer, "options": gun.options + ["Refused"]}}}))
    params = write_params(tmp_path, sample_sav.parent, release_text=["label_truncated"])
    raw = yaml.safe_load(params.read_text())
    raw["audit"] = {"release": str(release), "group_counts": None, "out_dir": str(tmp_path / "data" / "audit")}
    params.write_text(yaml.safe_dump(raw))
    assert main(["--params", str(params), "audit", "--no-progress"]) == 0
    assert main(["--params", str(params), "build"]) == 0
    questions = pd.read_parquet(tmp_path / "data" / "build" / "questions.parquet").set_index("qkey")
    assert questions.loc["GUNLAWS_W900", "question"] == longer
    assert questions.loc["GUNLAWS_W900", "text_source"] == "release"
    chain = json.loads(questions.loc["GUNLAWS_W900", "provenance"])
    assert chain["release"]["status"] == "label_truncated" and chain["release"]["codebook_label"] == gun.question
    assert questions.loc["AIFEEL_W900", "text_source"] == "reviewed"  # data/reviews/corrections.yaml
    assert (questions.drop(["GUNLAWS_W900", "AIFEEL_W900"])["text_source"] == "codebook").all()
    assert "1 from the release" in capsys.readouterr().out
    # the difference is in the review queue until a reviewed correction settles it
    assert main(["--params", str(params), "review"]) == 0
    listing = capsys.readouterr().out
    assert "GUNLAWS_W900" in listing and "label_truncated" in listing
    assert "== Audit differences from the published release to check: 1 open of 1 ==" in listing


def test_release_text_without_an_audited_release_names_the_key(tmp_path, sample_sav, capsys):
    params = write_params(tmp_path, sample_sav.parent, release_text=["label_truncated"])
    assert main(["--params", str(params), "build"]) == 2
    err = capsys.readouterr().err.strip()
    assert "build.release_text: needs audit.release" in err and len(err.splitlines()) == 1
