"""Bad questionnaire PDFs through the `ocr` command: one line per file, never a traceback."""

from __future__ import annotations


import pytest
import yaml

from reliability_helpers import run_cli

pytestmark = pytest.mark.reliability


def test_not_pdf_encrypted_and_truncated_pdfs_are_one_line_each(tmp_path, sample_sav, tally):
    pytest.importorskip("opinionbench.stages.ocr", reason="ocr stage missing")
    from pypdf import PdfReader, PdfWriter

    sample_pdf = sample_sav.parent / "W900_questionnaire.pdf"
    if not sample_pdf.exists():
        pytest.skip(f"{sample_pdf} not present")
    pdfs = {"W901": tmp_path / "not_a.pdf", "W902": tmp_path / "encrypted.pdf", "W903": tmp_path / "truncated.pdf"}
    pdfs["W901"].write_text("%not really a PDF, a text file\n")
    writer = PdfWriter()
    writer.append(PdfReader(str(sample_pdf)))
    writer.encrypt("secret")
    with open(pdfs["W902"], "wb") as fh:
        writer.write(fh)
    pdfs["W903"].write_bytes(sample_pdf.read_bytes()[:300])
    for name in pdfs:
        tally.bad_input(f"questionnaire PDF {pdfs[name].name}")
    params = {"questionnaire": {"pdfs": {k: str(v) for k, v in pdfs.items()},
                                "out_dir": str(tmp_path / "data" / "questionnaire"),
                                "ocr_cache_dir": str(tmp_path / "data" / "cache" / "ocr"), "workers": 1}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_cli(["--params", "params.yaml", "ocr"], cwd=tmp_path, timeout=120)
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    assert result.returncode == 2  # every wave failed; each said why on its own line
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    for path in pdfs.values():
        assert sum(path.name in line for line in errors) == 1, errors
