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


def _words(pages: list[list[str]], left: int = 150, pitch: int = 40, column: int = 0):
    """An OCR word frame of printed lines (one list of lines per page), as `ocr_pdf` returns it; a
    line indented with a leading `>` starts further right (an item, an option)."""
    import pandas as pd

    rows = []
    for page_no, page in enumerate(pages, start=1):
        for n, text in enumerate(page):
            x = left + (50 if text.startswith(">") else 0)
            for k, word in enumerate(text.lstrip(">").split()):
                rows.append({"page": page_no, "column": column, "block": 1, "par": 1, "line": n + 1, "word": k + 1,
                             "left": x + 90 * k, "top": 300 + pitch * n, "width": 80, "height": 24, "conf": 90.0,
                             "text": word, "dpi": 200, "page_width": 1700, "page_height": 2200})
    return pd.DataFrame(rows)


def _read(pages: list[list[str]], hints: dict[str, Hint]) -> dict[str, object]:
    from opinionbench.questionnaire.reader import read_blocks

    return {b.qcode: b for b in read_blocks(_words(pages), hints)}


POLITICS = "How important is it for {who} in politics to do each of the following?"
TRAITS = ["Be honest and ethical", "Work well under pressure", "Be willing to take risks"]
LEVELS = ["Essential", "Important, but not essential", "Not important"]


def _sibling_batteries() -> dict[str, Hint]:
    hints = {}
    for code, who in (("TRAITM", "MEN"), ("TRAITW", "WOMEN")):
        for letter, item in zip("abc", TRAITS):
            hints[f"{code}{letter}"] = Hint(f"{code}{letter}", f"{POLITICS.format(who=who)} {item}", LEVELS, ["Refused"])
    return hints


def test_sibling_batteries_with_one_word_apart_in_their_stems_are_told_apart():
    """The same items under `... MEN in politics` and `... WOMEN in politics`, only the second printed,
    without codes: its items are read as its own, the first battery's are not claimed."""
    page = [POLITICS.format(who="WOMEN")]
    for letter, item in zip("abc", TRAITS):
        page += [f">{letter}. {item}"] + [f">> {label}" for label in LEVELS]
    found = _read([page], _sibling_batteries())
    assert sorted(found) == ["TRAITWa", "TRAITWb", "TRAITWc"]
    assert found["TRAITWb"].options == LEVELS and found["TRAITWb"].wording.endswith("Work well under pressure")


def test_questions_with_one_wording_are_told_apart_by_their_options_and_no_code_is_needed():
    wording = "Please choose the statement that comes closer to your own views even if neither is exactly right."
    pairs = {"GOOD": ["Most things can be clearly divided into good and evil", "Most things are too complicated"],
             "RESP": ["People like me do not get the respect we deserve", "People like me get the respect we deserve"],
             "OBST": ["The obstacles for women are now largely gone", "There are still significant obstacles"],
             "FAIR": ["The economic system unfairly favors powerful interests", "The economic system is fair"]}
    hints = {code: Hint(code, wording, options, ["Refused"]) for code, options in pairs.items()}
    pages = [[wording] + [f">a. {pairs['OBST'][0]}", f">b. {pairs['OBST'][1]}", ">c. Refused",
                          wording, f">a. {pairs['FAIR'][0]}", f">b. {pairs['FAIR'][1]}"]]
    found = _read(pages, hints)
    assert sorted(found) == ["FAIR", "OBST"] and found["FAIR"].options == pairs["FAIR"]


def test_a_battery_item_printed_as_another_questions_option_is_not_claimed_for_the_battery():
    stem = "Do you think men and women are similar or different when it comes to each of the following?"
    items = ["Their hobbies and personal interests", "Their physical abilities", "Their approach to parenting"]
    hints = {f"DIFF{c}": Hint(f"DIFF{c}", f"{stem} {item}", ["Similar", "Different"], []) for c, item in zip("ABC", items)}
    hints["PICK"] = Hint("PICK", "Which of these did you say is most different between men and women?", items, [])
    pages = [[stem, ">Similar Different", ">c. Their approach to parenting 60 40",
              "Which of these did you say is most different between men and women?"] + [f">o {i}" for i in items]]
    found = _read(pages, hints)
    assert sorted(found) == ["DIFFC", "PICK"] and found["PICK"].options == items


def test_a_label_ocr_lost_between_two_read_ones_is_filled_from_the_line_pitch_and_specks_are_dropped():
    labels = ["A lot", "Some", "Not much", "None", "Refused"]
    region = [_line("A lot 20", top=100), _line("Some Co 30", top=140), _line("Not much 30", top=180),
              _line("Refused 1", top=260)]
    found = find_options(labels, region, ReaderSettings(), pitch=40.0)
    assert found.options == ["A lot", "Some", "Not much", "None", "Refused"] and found.labels == [0, 1, 2, 3, 4]
    assert find_options(labels, region, ReaderSettings()).options == ["A lot", "Some", "Not much", "Refused"]


def test_a_table_ocr_cut_into_two_columns_reads_as_rows_again():
    from opinionbench.questionnaire.reading.lines import read_lines

    left = _words([["a. Be honest and ethical 91", "b. Work well under pressure 79", "Some prose on the left"]])
    right = _words([["6 3 <1", "17 3 1"]], left=1000, column=1)
    lines = read_lines(__import__("pandas").concat([left, right]))
    assert [ln.text for ln in lines][:2] == ["a. Be honest and ethical 91 6 3 <1", "b. Work well under pressure 79 17 3 1"]


def test_a_two_column_page_ocr_read_as_one_is_cut_at_its_gutter():
    import pandas as pd

    from opinionbench.questionnaire.reading.lines import read_lines

    left = [f"Left column question line number {n} goes on" for n in range(10)]
    right = [f"Right column wording line number {n} here" for n in range(10)]
    rows = []
    for n, (a, b) in enumerate(zip(left, right)):
        words = [(w, 150 + 70 * k) for k, w in enumerate(a.split())] + [(w, 950 + 70 * k) for k, w in enumerate(b.split())]
        rows += [{"page": 1, "column": 0, "block": 1, "par": 1, "line": n + 1, "word": k + 1, "left": x, "top": 300 + 40 * n,
                  "width": 60, "height": 24, "conf": 90.0, "text": w, "dpi": 200, "page_width": 1700, "page_height": 2200}
                 for k, (w, x) in enumerate(words)]
    texts = [ln.text for ln in read_lines(pd.DataFrame(rows))]
    assert texts == left + right
