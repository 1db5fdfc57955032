"""The anchored reader: questionnaires in layouts it has no rules for, read back through real tesseract."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from PIL import Image, ImageDraw

from opinionbench.questionnaire.correct.base import Hint
from opinionbench.questionnaire.ocr import text_columns
from opinionbench.questionnaire.pipeline import read_blocks_of, read_questionnaire
from opinionbench.questionnaire.reader import ReaderSettings
from opinionbench.questionnaire.reading.anchors import choose_anchors, targets
from opinionbench.questionnaire.reading.lines import TextLine, drop_running_lines, read_lines
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
