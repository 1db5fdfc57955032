"""Random layouts (`--style random`) and the reader on what they print: codes anywhere, instructions,
column heads, batteries, OCR losses, skewed scans. Real reportlab, tesseract and poppler."""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pypdf import PdfReader

from opinionbench.questionnaire.correct.base import Hint
from opinionbench.questionnaire.ocr import skew_angle
from opinionbench.questionnaire.pipeline import read_questionnaire
from opinionbench.questionnaire.random_style import DIMENSIONS, draw_dimensions, draw_style
from opinionbench.questionnaire.reader import wording_words
from opinionbench.questionnaire.reading.anchors import anchor_scores, choose_anchors, targets
from opinionbench.questionnaire.reading.lines import TextLine, drop_running_lines
from opinionbench.questionnaire.reading.options import find_options
from opinionbench.questionnaire.reading.settings import ReaderSettings
from opinionbench.questionnaire.render import render_wave_questionnaire
from opinionbench.survey import load_wave


def _line(text: str, page: int = 1, top: int = 500) -> TextLine:
    words = text.split()
    lefts = [100 * k for k in range(len(words))]
    return TextLine(page=page, column=0, top=top, bottom=top + 20, left=0, right=100 * len(words), words=words,
                    lefts=lefts, rights=[x + 60 for x in lefts], confs=[90.0] * len(words))


def test_a_seed_draws_every_dimension_independently_and_the_same_way_twice():
    draws = [draw_dimensions(seed) for seed in range(1000, 1300)]
    assert draw_dimensions(1000) == draws[0]
    for name, values in DIMENSIONS.items():
        seen = Counter(d[name] for d in draws)
        assert set(seen) == {str(v) for v in values}, name  # every value is drawn
    # independence, roughly: the code placement is spread the same whatever the battery layout
    for battery in DIMENSIONS["battery"]:
        codes = {d["code"] for d in draws if d["battery"] == battery}
        assert len(codes) >= 6
    style, scan, dims = draw_style(1000)
    assert style.name == "random" and 150 <= scan.dpi <= 300 and scan.max_rotation <= 2.0


def test_the_pdf_records_its_drawn_dimensions(sample_sav, tmp_path):
    from opinionbench.tools.render_questionnaire import run

    pdf = tmp_path / "W900_random.pdf"
    args = argparse.Namespace(sav=sample_sav, pdf=pdf, clean=True, dpi=200, seed=1003, max_questions=None,
                              style="random")
    assert run(args) == 0
    keywords = PdfReader(str(pdf)).metadata["/Keywords"]
    recorded = json.loads(keywords.split(" ", 1)[1])
    assert recorded == {"seed": 1003, **draw_dimensions(1003)}


@pytest.mark.parametrize("seed", [1000, 1003])
def test_a_random_layout_of_the_sample_wave_reads_back(seed, sample_sav, tmp_path):
    """Scanned in a drawn layout (skewed, degraded), every question is found with the codebook's
    wording and options, and nothing else is claimed."""
    wave = load_wave(sample_sav)
    pdf = tmp_path / "W900.pdf"
    render_wave_questionnaire(sample_sav, pdf, style="random", seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = read_questionnaire(pdf, wave, "codebook", ocr_cache_dir=tmp_path / "ocr")
    truth = wave.questions.set_index("qcode")
    assert sorted(frame["qcode"]) == sorted(truth.index), draw_dimensions(seed)
    exact = sum(list(r.options) == list(truth.loc[r.qcode, "options"]) for r in frame.itertuples())
    same = sum(r.question == truth.loc[r.qcode, "question"] for r in frame.itertuples())
    assert exact >= len(truth) - 1 and same >= len(truth) - 1, frame[["qcode", "question_ocr", "options_ocr"]]


def test_instructions_and_column_heads_are_not_wording():
    question = "How safe, if at all, would you say YOUR LOCAL COMMUNITY is from crime?"
    lines = [["How", "safe,", "if", "at", "all,", "would", "you", "say", "YOUR", "LOCAL"],
             ["COMMUNITY", "is", "from", "crime?", "[READ", "LIST]"],
             ["INTERVIEWER:", "DO", "NOT", "READ", "CATEGORIES"],
             ["Current", "Previous"]]
    assert " ".join(wording_words(lines, question)) == question


def test_battery_siblings_are_told_apart_by_their_own_words_and_an_unprinted_one_is_not_claimed():
    stem = ("How important is it to you for someone in a top position in business or government to be able "
            "to do each of the following?")
    hints = {f"TOP{c}": Hint(f"TOP{c}", f"{stem} {item}", ["Essential", "Not important"], [])
             for c, item in zip("abc", ["Be willing to take risks", "Work well under pressure", "Be honest"])}
    printed = [f"TOPb. {stem[:60]}", stem[60:], "Work well under pressure", "Essential 40", "Not important 60"]
    lines = [_line(t, top=100 + 30 * k) for k, t in enumerate(printed)]
    anchors = choose_anchors(anchor_scores(lines, targets(hints), ReaderSettings()))
    assert anchors[0] is None and anchors[2] is None and anchors[1] is not None and anchors[1][0] == 0


def test_running_headers_go_but_battery_items_opening_pages_alike_stay():
    lines = []
    for page in (1, 2, 3):
        lines += [_line("PEW RESEARCH CENTER AMERICAN TRENDS PANEL WAVE 26", page, top=40),
                  _line(f"How much do you worry about the following? Item number {page}", page, top=120)]
    words = __import__("pandas").DataFrame({"page": [1, 2, 3], "page_height": [2200] * 3})
    expected = [f"How much do you worry about the following? Item number {p}" for p in (1, 2, 3)]
    kept = drop_running_lines(lines, words, ReaderSettings(band=0.07), expected)
    assert [ln.text for ln in kept] == expected


def test_an_option_with_a_number_in_it_and_one_whose_word_ocr_lost():
    labels = ["Yes", "No", "I do not have children under 18", "None", "Refused"]
    region = [_line("* Yes 59 56"), _line("« No 40 36"), _line("* I do not have children 1 2"),
              _line("under 18"), _line("d."), _line("* Refused (VOL.) <1 0")]
    found = find_options(labels, region, ReaderSettings())
    assert found.options == ["Yes", "No", "I do not have children under 18", "None", "Refused"]
    assert found.percents[2] == ["1", "2"] and found.percents[0] == ["59", "56"]


def test_a_skewed_scan_is_levelled_before_it_is_read():
    page = Image.new("L", (1200, 1500), 255)
    draw = ImageDraw.Draw(page)
    for row in range(30):
        draw.text((100, 100 + row * 40), "A line of questionnaire wording " * 2, fill=0, font_size=24)
    rotated = page.rotate(1.5, resample=Image.BICUBIC, fillcolor=255)
    assert abs(skew_angle(rotated) + 1.5) <= 0.15
    assert abs(skew_angle(page)) <= 0.1
    assert np.asarray(page).min() == 0  # the page has ink


def test_a_question_whose_options_could_not_be_read_goes_to_review_with_the_reason():
    from opinionbench.config import CorrectionParams
    from opinionbench.questionnaire.correct import make_backend
    from opinionbench.questionnaire.pipeline import correct_blocks
    from opinionbench.questionnaire.segment import Block

    hints = {"GUN": Hint("GUN", "Do you own a gun?", ["Yes", "No"], [])}
    block = Block(qcode="GUN", routing=None, wording="Do you own a gun?", options=[], percents=[])
    params = CorrectionParams(backend="codebook")
    frame = correct_blocks([block], wave_id="W1", backend=make_backend("codebook", params), params=params,
                           hints=hints, progress=False)
    assert frame.loc[0, "status"] == "needs_review"
    assert "options not read from the page" in frame.loc[0, "review_reasons"]
