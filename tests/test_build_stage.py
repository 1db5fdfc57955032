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
    assert set(questions["text_source"]) <= {"codebook", "questionnaire"}
    assert set(dists["qkey"]) == set(questions["qkey"])
    assert json.loads((out / "build_metrics.json").read_text()) == {
        "waves_built": 1, "questions": 12, "cells": len(dists), "waves_failed": 0,
    }
    report = json.loads((out / "build_report.json").read_text())
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
