"""The anchored reader: questionnaires in layouts it has no rules for, read back through real tesseract."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from PIL import Image, ImageDraw

from opinionbench.questionnaire.correct.base import Hint
from opinionbench.questionnaire.ocr import text_columns
from opinionbench.questionnaire.pipeline import read_blocks_of, read_questionnaire
from opinionbench.questionnaire.reader import ReaderSettings, drop_code
from opinionbench.questionnaire.reading.anchors import anchor_scores, choose_anchors, code_key, targets
from opinionbench.questionnaire.reading.identity import identities, rival
from opinionbench.questionnaire.reading.lines import (TextLine, drop_running_lines, read_lines, rejoin_cut_lines,
                                                      rejoin_cut_tables)
from opinionbench.questionnaire.reading.options import number_label_match, percents_of
from opinionbench.questionnaire.render import render_wave_questionnaire
from opinionbench.questionnaire.styles import STYLES, style_named
from opinionbench.survey import load_wave


def _line(text: str, page: int = 1, top: int = 500) -> TextLine:
    words = text.split()
    lefts = [100 * k for k in range(len(words))]
    return TextLine(page=page, column=0, top=top, bottom=top + 20, left=0, right=100 * len(words), words=words,
                    lefts=lefts, rights=[x + 60 for x in lefts], confs=[90.0] * len(words))


@pytest.mark.parametrize("style", list(STYLES))
def test_sample_wave_in_every_style_reads_back_exactly(style, sample_sav, tmp_path):
    """Scanned in each layout, every question of the sample wave is found with the codebook's
    wording and options, and its printed percentages agree with the weighted topline."""
    wave = load_wave(sample_sav)
    pdf = tmp_path / f"W900_{style}.pdf"
    render_wave_questionnaire(sample_sav, pdf, style=style, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = read_questionnaire(pdf, wave, "codebook", ocr_cache_dir=tmp_path / "ocr")
    truth = wave.questions.set_index("qcode")
    assert sorted(frame["qcode"]) == sorted(truth.index)
    for row in frame.itertuples():
        assert row.question == truth.loc[row.qcode, "question"], (style, row.qcode, row.question_ocr)
        assert list(row.options) == list(truth.loc[row.qcode, "options"]), (style, row.qcode, row.options_ocr)
    assert frame["topline_ok"].sum() >= len(frame) - 1, frame[["qcode", "percents_ocr", "topline_detail"]]


@pytest.mark.integration
@pytest.mark.parametrize("style", ["matrix", "two_column", "numbered"])
def test_real_wave_batteries_tables_and_columns(style, atp_dir, tmp_path):
    """W26 (batteries of worries and self-descriptions) against its whole codebook: every printed
    question found once, none of the codebook's unprinted questions claimed."""
    from opinionbench.questionnaire.render import render_pdf, scan_pdf, wave_render_questions

    real = load_wave(atp_dir / "W26.sav")
    questions = wave_render_questions(real)[:20]
    clean, scanned = tmp_path / "W26.clean.pdf", tmp_path / "W26.pdf"
    render_pdf(questions, clean, wave="W26", n=len(real.weights), style=style, seed=2)
    scan_pdf(clean, scanned, dpi=200, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = read_questionnaire(scanned, real, "codebook", ocr_cache_dir=tmp_path / "ocr")
    printed = [q.qcode for q in questions]
    assert sorted(frame["qcode"]) == sorted(printed)
    truth = real.questions.set_index("qcode")
    exact = sum(list(r.options) == list(truth.loc[r.qcode, "options"]) for r in frame.itertuples())
    same_wording = sum(r.question == truth.loc[r.qcode, "question"] for r in frame.itertuples())
    assert exact >= len(printed) - 1 and same_wording >= len(printed) - 1
    if style == "matrix":  # the table's items got their stem back and their options from the header
        worry = frame.set_index("qcode").loc["WORRYC"]
        assert worry["question_ocr"].startswith("How much") and worry["question_ocr"].endswith("job")


def test_a_two_column_page_is_split_at_its_gutter_and_a_one_column_page_is_not():
    page = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(page)
    for row in range(40):
        y = 200 + row * 45
        draw.text((150, y), "Left column text line with several words " * 1, fill=0, font_size=28)
        draw.text((900, y), "Right column text line with several words", fill=0, font_size=28)
    columns = text_columns(page, dpi=200)
    assert len(columns) == 2 and 650 < columns[0][1] < 900
    single = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(single)
    for row in range(40):
        draw.text((150, 200 + row * 45), "One wide line of wording that runs across the middle of the page "
                  "and on", fill=0, font_size=28)
    assert text_columns(single, dpi=200) == [(0, 1700)]


def test_anchors_keep_the_codebook_order_and_prefer_the_best_supported_lines():
    # question 0 fits line 2 well and line 5 weakly; question 1 only fits line 3: order forces 0 -> 2
    scores = [[(5, 30.0, "wording"), (2, 20.0, "wording")], [(3, 25.0, "code")], []]
    assert choose_anchors(scores) == [(2, "wording"), (3, "code"), None]


def test_numeric_scale_points_are_read_next_to_or_glued_to_their_percentages():
    assert number_label_match("5", _line("13 5"))[0] == 100.0
    assert number_label_match("5", _line("135"))[0] == 90.0  # 13% of 5, read as one word
    assert number_label_match("5", _line("13 §"))[0] == 90.0  # `§` is how tesseract sometimes reads 5
    # wording, not an option line: below the threshold an option needs
    assert number_label_match("5", _line("5 represents the worst"))[0] < ReaderSettings().option_min_ratio
    assert percents_of(_line("135"), "5") == ["13"]
    assert percents_of(_line("13 5"), "5") == ["13"]


def test_running_headers_and_page_numbers_are_dropped_even_when_ocr_varies():
    lines = []
    for page, header in enumerate(["PEW RESEARCH CENTER AMERICAN TRENDS PANEL WAVE 26",
                                   "PEW RESEARCH CENTER AMERICAN TRENOS PANEL WAVE 26",
                                   "PEW RESEARCH CENTER AMERICAN TRENDS PANEL WAVE 28"], start=1):
        lines += [_line(header, page, top=40), _line(str(page), page, top=2150),
                  _line(f"Body text of page {page}", page, top=900)]
    words = pd.DataFrame({"page": [1, 2, 3], "page_height": [2200] * 3})
    kept = drop_running_lines(lines, words, ReaderSettings())
    assert [ln.text for ln in kept] == [f"Body text of page {p}" for p in (1, 2, 3)]


def test_battery_items_know_their_stem_from_the_codebook():
    hints = {
        "WORRYA": Hint("WORRYA", "How much do you worry about the following? Losing your job", ["A lot", "No"], []),
        "WORRYB": Hint("WORRYB", "How much do you worry about the following? Paying your bills", ["A lot", "No"], []),
        "GUN": Hint("GUN", "Do you own a gun?", ["Yes", "No"], []),
    }
    t = {x.qcode: x for x in targets(hints)}
    assert t["WORRYA"].stem == "How much do you worry about the following?" and t["WORRYB"].item == "Paying your bills"
    assert t["GUN"].stem is None


def test_without_a_codebook_the_layout_rules_read_our_own_topline(sample_sav, tmp_path):
    from opinionbench.questionnaire.ocr import ocr_pdf

    pdf = tmp_path / "W900.pdf"
    render_wave_questionnaire(sample_sav, pdf, scanned=False, max_questions=3)
    words = ocr_pdf(pdf, cache_dir=tmp_path / "ocr", progress=False)
    assert {ln.column for ln in read_lines(words)} == {0}
    with pytest.warns(UserWarning, match="no codebook to anchor on"):
        blocks = read_blocks_of(words, hints=None, source=str(pdf))
    assert [b.qcode for b in blocks] == ["ECONRATE", "GOVSIZE", "CLIMATE"]


def test_an_unknown_style_is_one_clear_line():
    with pytest.raises(ValueError, match="questionnaire style 'fancy' is unknown; known: topline.*random"):
        style_named("fancy")


def _placed(text: str, column: int, left: int, top: int, step: int = 100) -> TextLine:
    words = text.split()
    lefts = [left + step * k for k in range(len(words))]
    rights = [x + step - 10 for x in lefts]
    return TextLine(page=1, column=column, top=top, bottom=top + 30, left=lefts[0], right=rights[-1], words=words,
                    lefts=lefts, rights=rights, confs=[90.0] * len(words))


def test_a_line_cut_at_a_false_gutter_is_joined_and_a_real_second_column_is_not():
    # a one-column page whose two long lines OCR cut in two, the first through a word (`OFFI|CES`)
    left = [_placed("do you think women in HIGH POLITICAL OFFI", 0, 100, 400, step=100),
            _placed("Standing up for what they believe in, despite", 0, 100, 900, step=100)]
    left[0].rights[-1] = left[0].right = 890
    right = [_placed("CES are better at each of the following?", 1, 890, 402),
             _placed("political pressure", 1, 900, 901)]
    joined = rejoin_cut_lines(left + right)
    assert [ln.text for ln in joined] == ["do you think women in HIGH POLITICAL OFFICES are better at each of the "
                                          "following?", "Standing up for what they believe in, despite political pressure"]
    # a real second column: its lines have no left-hand line ending a word gap before them
    columns = [_placed("Left column words", 0, 100, 400 + 50 * k) for k in range(6)] + \
              [_placed("Right column words here", 1, 900, 400 + 50 * k) for k in range(6)]
    assert len(rejoin_cut_lines(columns)) == 12


def test_sibling_questions_are_told_apart_by_their_own_words_numbers_included():
    stem = "In general, how do you think each of the following impacts a {}’S chances? Being ambitious"
    options = ["Helps", "Hurts"]
    hints = {"TRAITM": Hint("TRAITM", stem.format("MAN"), options, []),
             "TRAITW": Hint("TRAITW", stem.format("WOMAN"), options, []),
             "GUNKIDS": Hint("GUNKIDS", "Gun owners WHO HAVE CHILDREN: how important is it to lock guns?",
                             ["Important but not essential", "Not important"], []),
             "GUNNOKIDS": Hint("GUNNOKIDS", "Gun owners who DO NOT HAVE CHILDREN: how important is it to lock guns?",
                               ["Important but not essential", "Not important"], []),
             "STAY_m1": Hint("STAY_m1", "REASSTAY mention 1", ["Near family", "Near friends"], []),
             "STAY_m3": Hint("STAY_m3", "REASSTAY mention 3", ["Near family", "Near friends"], [])}
    everyone = identities(hints)
    own = {i.qcode: i for i in everyone}
    # `woman's` is printed: the man's question is not, though `man's` is nearly spelled in it
    assert rival(own["TRAITM"], everyone, stem.format("WOMAN"), options) == "TRAITW"
    assert rival(own["TRAITW"], everyone, stem.format("WOMAN"), options) is None
    # the same words in wording and options together (`not` is an option's word): the wordings decide
    printed = "Gun owners who 00 NOT HAVE CHILDREN: how important is it to lock guns?"
    assert rival(own["GUNKIDS"], everyone, printed, hints["GUNKIDS"].options) == "GUNNOKIDS"
    assert rival(own["STAY_m1"], everyone, "REASSTAY mention 3", ["Near family"]) == "STAY_m3"


def test_a_code_printed_twice_does_not_keep_its_misread_twin_from_its_own_line():
    hints = {"COMMIMPE": Hint("COMMIMPE", "How important is it to live in a community with access to outdoor "
                              "activities", ["Very", "Not"], []),
             "COMMIMPF": Hint("COMMIMPF", "How important is it to live in a community where people know each "
                              "other", ["Very", "Not"], [])}
    lines = [_line("[COMMIMPF] How important is it to live in a community with access to outdoor activities", top=100),
             _line("a. Very", top=150), _line("b. Not", top=200),
             _line("[COMMIMPF] How important is it to live in a community where people know each other", top=300),
             _line("a. Very", top=350), _line("b. Not", top=400)]
    tgts = targets(hints)
    chosen = choose_anchors(anchor_scores(lines, tgts, ReaderSettings()))
    assert [c[0] if c else None for c in chosen] == [0, 3]
    assert code_key("INEQS..j") == code_key("INEQ5_j")  # OCR reads an underscore as anything


def test_a_printed_code_is_dropped_from_the_wording_but_not_the_words_after_it():
    settings = ReaderSettings()
    assert drop_code("[GAP21Q26_a] The U.S.".split(), "GAP21Q26_a", settings) == ["The", "U.S."]
    assert drop_code("J OBTRAIN. Do you".split(), "JOBTRAIN", settings) == ["Do", "you"]
    # a codebook wording that begins with its code's letters keeps them
    assert drop_code("REASBACK mention }".split(), "REASBACK_m1", settings, "REASBACK mention 1") == \
        ["REASBACK", "mention", "}"]


def test_check_boxes_cut_off_as_a_column_are_joined_back_to_their_rows():
    rows = [_placed(f"{letter}. Item number {k}", 0, 100, 400 + 50 * k) for k, letter in enumerate("abcdef")]
    boxes = [_placed("oO QO Oo", 1, 1000, 402 + 50 * k) for k in range(6)]
    joined = rejoin_cut_tables(rows + boxes)
    assert len(joined) == 6 and joined[0].text == "a. Item number 0 oO QO Oo"


def test_a_wording_is_found_behind_speckle_and_a_code_ocr_garbled_beyond_recognition():
    hints = {"GOVSIZE1": Hint("GOVSIZE1", "If you had to choose, would you rather have...",
                              ["A smaller government providing fewer services", "A bigger government"], [])}
    lines = [_line("a eovstzzi. If you had to choose, would you rather have...", top=100),
             _line("1. A smaller government providing fewer services", top=150), _line("2. A bigger government", top=200)]
    assert choose_anchors(anchor_scores(lines, targets(hints), ReaderSettings())) == [(0, "wording")]
