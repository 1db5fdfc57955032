"""Render → OCR (real tesseract) → segment, and the bad inputs around them."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from opinionbench.questionnaire.errors import QuestionnaireError
from opinionbench.questionnaire.ocr import OcrSettings, PageWarning, check_pdf, ocr_pdf
from opinionbench.questionnaire.render import format_percent, render_wave_questionnaire
from opinionbench.questionnaire.segment import parse_percent, segment
from opinionbench.sample import QUESTIONS

REPO = Path(__file__).resolve().parents[1]
SAMPLE_PDF = REPO / "data" / "sample" / "W900_questionnaire.pdf"


@pytest.fixture(scope="module")
def sample_words(tmp_path_factory):
    return ocr_pdf(SAMPLE_PDF, cache_dir=tmp_path_factory.mktemp("ocr"), progress=False)


def test_committed_sample_questionnaire_is_a_small_scanned_pdf():
    assert check_pdf(SAMPLE_PDF) >= 2
    assert SAMPLE_PDF.stat().st_size < 2_000_000
    from pypdf import PdfReader

    page = PdfReader(str(SAMPLE_PDF)).pages[0]
    assert not page.extract_text().strip(), "a scan has no text layer: OCR must do the work"


def test_ocr_keeps_words_with_confidences_and_boxes(sample_words):
    assert {"page", "line", "text", "conf", "left", "top", "width", "height", "dpi"} <= set(sample_words.columns)
    assert sample_words["page"].nunique() == 3
    assert sample_words["conf"].between(0, 100).all()
    assert (sample_words["width"] > 0).all()
    assert "ECONRATE." in set(sample_words["text"])


def test_segment_finds_every_sample_question_with_routing_and_toplines(sample_words):
    blocks = {b.qcode: b for b in segment(sample_words)}
    assert set(blocks) == {q.qcode for q in QUESTIONS}
    assert blocks["GUNLAWS"].routing == "ASK FORM 1"
    assert blocks["ECONRATE"].routing == "ASK ALL"
    gun = blocks["GUNLAWS"]
    assert len(gun.options) == 3 and gun.refusal_options == ["Refused"]
    assert all(p is not None and p.isdigit() for p in gun.percents)
    assert gun.page == 1 and len(gun.bbox) == 4 and gun.bbox[2] > gun.bbox[0]
    assert blocks["IMMIG"].wording.startswith("Which statement comes closer")
    assert blocks["MINWAGE"].page == 3


def test_percent_tokens():
    assert parse_percent("27°") == "27"
    assert parse_percent("<1") == "<1"
    assert parse_percent("4O") == "40"
    assert parse_percent("Good") is None
    assert format_percent(0.004) == "<1" and format_percent(0.125) == "13" and format_percent(0.0) == "0"


def test_ocr_resumes_from_finished_pages(tmp_path):
    cache = tmp_path / "cache"
    ocr_pdf(SAMPLE_PDF, cache_dir=cache, workers=1, progress=False, pages=[1, 2])
    done = sorted(cache.rglob("page-*.parquet"))
    assert [p.name for p in done] == ["page-0001.parquet", "page-0002.parquet"]
    before = {p: p.stat().st_mtime_ns for p in done}
    words = ocr_pdf(SAMPLE_PDF, cache_dir=cache, workers=2, progress=False)  # the "rerun after a kill"
    assert words["page"].nunique() == 3
    assert {p: p.stat().st_mtime_ns for p in done} == before, "finished pages must not be OCR'd again"


def test_not_a_pdf_is_one_clear_error(tmp_path):
    bad = tmp_path / "W1_questionnaire.pdf"
    bad.write_text("this is not a pdf")
    with pytest.raises(QuestionnaireError, match=r"W1_questionnaire.pdf: not a PDF"):
        check_pdf(bad)


def test_encrypted_pdf_is_refused(tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(str(SAMPLE_PDF)))
    writer.encrypt("secret")
    enc = tmp_path / "enc.pdf"
    with open(enc, "wb") as fh:
        writer.write(fh)
    with pytest.raises(QuestionnaireError, match=r"enc.pdf: PDF is encrypted"):
        check_pdf(enc)


def test_truncated_pdf_reports_file_and_keeps_readable_pages(tmp_path):
    data = SAMPLE_PDF.read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: int(len(data) * 0.5)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            words = ocr_pdf(cut, cache_dir=tmp_path / "c", workers=1, progress=False)
        except QuestionnaireError as exc:
            assert "cut.pdf" in str(exc)
            return
    messages = [str(w.message) for w in caught]
    assert any("cut.pdf" in m for m in messages), messages
    assert words["page"].nunique() >= 1


def test_blank_page_and_page_without_questions_warn_but_others_go_on(tmp_path, sample_sav):
    from pypdf import PdfReader, PdfWriter
    from reportlab.pdfgen import canvas

    extra = tmp_path / "extra.pdf"
    c = canvas.Canvas(str(extra), pagesize=(612, 792))
    c.showPage()  # blank
    c.setFont("Helvetica", 12)
    c.drawString(72, 700, "Methodological note: the panel is recruited by address-based sampling.")
    c.showPage()
    c.save()
    clean = tmp_path / "clean.pdf"
    render_wave_questionnaire(sample_sav, clean, scanned=False, max_questions=3)
    writer = PdfWriter()
    writer.append(PdfReader(str(clean)))
    writer.append(PdfReader(str(extra)))
    mixed = tmp_path / "mixed.pdf"
    with open(mixed, "wb") as fh:
        writer.write(fh)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        words = ocr_pdf(mixed, settings=OcrSettings(dpi=150), cache_dir=tmp_path / "c", progress=False)
        blocks = segment(words, source=str(mixed))
    messages = [str(w.message) for w in caught if issubclass(w.category, PageWarning)]
    assert any("page 2: blank page" in m for m in messages), messages
    assert any("page 3: no questions found" in m for m in messages), messages
    assert [b.qcode for b in blocks] == ["ECONRATE", "GOVSIZE", "CLIMATE"]


def _token_recall(words, truth_text: str) -> float:
    """Share of the printed words (as a multiset) that OCR read exactly."""
    from collections import Counter

    truth, got = Counter(truth_text.split()), Counter(words["text"])
    return sum((got & truth).values()) / sum(truth.values())


def test_crisp_scans_keep_the_global_threshold():
    """The committed sample (a 200-dpi scan) is not faint: its OCR takes the unchanged Otsu path."""
    from pdf2image import convert_from_path

    from opinionbench.questionnaire.ocr import despeckle, deskew, ink_level

    levels = [ink_level(despeckle(deskew(page))) for page in convert_from_path(str(SAMPLE_PDF), dpi=200, grayscale=True)]
    assert max(levels) <= OcrSettings().faint_ink, levels


def test_faint_low_resolution_scan_is_thresholded_locally(tmp_path, sample_sav):
    """A 9-point serif page scanned at 150 dpi with heavy blur (random layout 1020's draw) has grey
    ink; read with tesseract's local (Sauvola) threshold it keeps far more of its words than with
    Otsu's global one, which fills the thin strokes in."""
    from pdf2image import convert_from_path
    from pypdf import PdfReader

    from opinionbench.questionnaire.ocr import despeckle, deskew, ink_level, ocr_page
    from opinionbench.questionnaire.random_style import draw_style
    from opinionbench.questionnaire.render import scan_pdf

    _, scan, dims = draw_style(1020)
    assert (dims["dpi"], dims["size"], dims["blur"], dims["font"]) == ("150", "9.0", "heavy", "Times-Roman")
    clean, scanned = tmp_path / "clean.pdf", tmp_path / "scanned.pdf"
    render_wave_questionnaire(sample_sav, clean, scanned=False, style="random", seed=1020, max_questions=4)
    scan_pdf(clean, scanned, seed=1020, scan=scan)
    truth = PdfReader(str(clean)).pages[0].extract_text()
    page = convert_from_path(str(scanned), dpi=200, first_page=1, last_page=1, grayscale=True)[0]
    assert ink_level(despeckle(deskew(page))) > OcrSettings().faint_ink
    local = _token_recall(ocr_page(scanned, 1, OcrSettings()), truth)
    global_otsu = _token_recall(ocr_page(scanned, 1, OcrSettings(faint_ink=255)), truth)
    assert local >= 0.8 and local >= global_otsu + 0.1, (local, global_otsu)
