"""The questionnaire commands end to end through the CLI: ocr → correct → build → provenance/review."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from opinionbench.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("q")
    bad = tmp / "W1_questionnaire.pdf"
    bad.write_text("<html>not a pdf</html>")
    params = {
        "data": {"waves_dir": str(REPO / "data" / "sample")},
        "build": {"workers": 1, "out_dir": str(tmp / "data" / "build")},
        "questionnaire": {
            "pdfs": {"W900": str(REPO / "data" / "sample" / "W900_questionnaire.pdf"), "W1": str(bad)},
            "out_dir": str(tmp / "data" / "q"), "ocr_cache_dir": str(tmp / "data" / "ocrcache"),
            "reviews": str(REPO / "data" / "reviews" / "corrections.yaml"), "provenance_dir": str(tmp / "data" / "prov"),
        },
    }
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return tmp, path


def test_ocr_reports_a_bad_pdf_on_one_line_and_reads_the_other_wave(workspace, capsys):
    tmp, params = workspace
    assert main(["--params", str(params), "ocr"]) == 0
    out = capsys.readouterr().out
    assert "error: " in out and "W1_questionnaire.pdf: not a PDF file" in out
    assert "W900: OCR 3 pages" in out
    metrics = json.loads((tmp / "data" / "q" / "W900" / "ocr_metrics.json").read_text())
    assert metrics["pages"] == 3 and metrics["words"] > 300


def test_correct_build_provenance_review(workspace, capsys):
    tmp, params = workspace
    assert main(["--params", str(params), "correct", "W900"]) == 0
    assert "12 questions" in capsys.readouterr().out
    assert main(["--params", str(params), "build"]) == 0
    questions = pd.read_parquet(tmp / "data" / "build" / "questions.parquet").set_index("qcode")
    assert (questions.drop("AIFEEL")["text_source"] == "questionnaire").all()
    assert questions.loc["AIFEEL", "question"].endswith("or equally concerned and excited?"), "review applied last"
    assert questions.loc["AIFEEL", "text_source"] == "reviewed", "a person's wording is said to be one"
    capsys.readouterr()
    assert main(["--params", str(params), "provenance", "AIFEEL_W900"]) == 0
    out = capsys.readouterr().out
    assert "page 2" in out and "manual review: question by" in out and "OCR confidence" in out
    crop = tmp / "data" / "prov" / "AIFEEL_W900.png"
    from PIL import Image

    with Image.open(crop) as im:
        assert im.width > 400 and im.height > 50
    assert main(["--params", str(params), "review", "--top", "3"]) == 0
    listing = capsys.readouterr().out
    assert "== Questionnaire corrections to check" in listing and "routed to review" in listing
    assert "== Audit differences" in listing and "AIFEEL_W900" not in listing  # reviewed: off the queue
    assert main(["--params", str(params), "provenance", "NOPE_W900"]) == 2
    assert "error: NOPE_W900: not in" in capsys.readouterr().err


def test_invalid_params_name_the_key(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump({"questionnaire": {"correction": {"backend": "gpt9"}}}))
    assert main(["--params", str(bad), "correct"]) == 2
    err = capsys.readouterr().err
    assert "questionnaire.correction.backend" in err and err.count("\n") == 1
