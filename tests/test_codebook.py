"""Codebook extraction on the embedded sample: wording, option order, refusals, ordinals, skips."""

from __future__ import annotations

import pytest

from opinionbench.survey import load_wave
from opinionbench.survey.answer_classes import answer_class
from opinionbench.survey.codebook import ordinal_values, strip_code_prefix


@pytest.fixture(scope="module")
def wave(sample_sav):
    return load_wave(sample_sav)


def test_questions_table_has_the_public_columns(wave):
    q = wave.questions
    for col in ["qkey", "wave", "qcode", "question", "options", "refusal_options", "ordinal"]:
        assert col in q.columns
    assert len(q) == 12
    assert q["qkey"].is_unique
    assert set(q["wave"]) == {"W900"}


def test_wording_is_the_variable_label_without_its_code_prefix(wave):
    row = wave.questions.set_index("qkey").loc["ECONRATE_W900"]
    assert row["qcode"] == "ECONRATE"
    assert row["question"] == (
        "Thinking about the nation's economy, how would you rate economic conditions in this country today?"
    )


def test_options_follow_codebook_order_and_refusals_are_separate(wave):
    q = wave.questions.set_index("qkey")
    assert list(q.loc["ECONRATE_W900", "options"]) == ["Excellent", "Good", "Only fair", "Poor"]
    assert list(q.loc["ECONRATE_W900", "refusal_options"]) == ["Refused"]
    assert list(q.loc["CLIMATE_W900", "options"]) == ["A great deal", "Some", "Not too much", "Not at all"]
    assert list(q.loc["CLIMATE_W900", "refusal_options"]) == ["Don't know", "Refused"]
    assert list(q.loc["CLIMATE_W900", "refusal_codes"]) == [98.0, 99.0]


def test_ordinal_is_codebook_order_unless_overridden(wave):
    q = wave.questions.set_index("qkey")
    assert list(q.loc["MINWAGE_W900", "ordinal"]) == [1.0, 2.0, 3.0, 4.0]
    # "Neither helping nor hurting" is listed last but belongs in the middle (label rule)
    assert list(q.loc["ECONPOOR_W900", "ordinal"]) == [1.0, 2.0, 3.0, 4.0, 2.5]
    # exact override by qkey: "Kept as they are now" between "More strict" and "Less strict"
    assert list(q.loc["GUNLAWS_W900", "ordinal"]) == [1.0, 3.0, 2.0]


def test_non_questions_are_skipped_with_a_reason(wave):
    skipped = wave.skipped
    assert skipped["QKEY"] == "admin variable"
    assert skipped["FORM_W900"] == "admin variable"
    assert skipped["WEIGHT_W900"] == "weight"
    assert skipped["F_PARTY_FINAL"].startswith("profile")
    assert skipped["MIPOPEN_W900"].startswith("open-ended")
    assert skipped["NUMHH_W900"].startswith("numeric")
    assert skipped["SCREEN_W900"].startswith("fewer than 2 substantive options")
    assert not set(skipped) & set(wave.questions["qkey"])


def test_wave_metadata_from_the_file(wave):
    assert wave.weight_column == "WEIGHT_W900"
    assert wave.wave_start == "2026-03-02"
    assert wave.wave_end is not None and wave.wave_end >= wave.wave_start
    assert wave.topic.startswith("Synthetic sample wave")


@pytest.mark.parametrize(
    "label,code,expected",
    [("Refused", 99, "refused"), ("Refused all items in set", 99, "refused"), ("Don’t know/Refused", 99, "dont_know"),
     ("(VOL) Don't know/Refused", 9, "dont_know"), ("DK/Ref", 9, "dont_know"), ("DK-refused to lean", 8, "dont_know"),
     ("No answer", 99, "no_answer"), ("Don't know", 98, "dont_know"), ("DK/Not sure", 999, "dont_know"),
     # offered on the web questionnaire (an ordinary code; "Not sure" whatever its code): an answer
     ("Don't know", 4, "substantive"), ("Not sure", 5, "substantive"), ("Not sure", 98, "substantive"),
     # answers that start like a refusal (PWMAN2_W49, NGHBRSUPP16_W23, RELFAV_a_W114)
     ("Don’t know what that is", 1, "substantive"), ("Don't know who people in my community supported", 4, "substantive"),
     ("Don’t know enough to say", 6, "substantive"), ("Don't know what we are doing", 98, "substantive"),
     ("Never", 3, "substantive"), ("None", 5, "substantive"), ("Don't even have enough to meet basic expenses", 3, "substantive")],
)
def test_answer_classes_pew(label, code, expected):
    assert answer_class(label, code) == expected


@pytest.mark.parametrize("label", ["Don't know/Refused", "Not sure", "Don't know", "No answer", "Refused all items in set"])
def test_opinionqa_convention_removes_only_refused(label):
    assert answer_class(label, 99, "opinionqa") == "substantive"
    assert answer_class("Refused", 99, "opinionqa") == "refused"


def test_code_prefix_variants():
    assert strip_code_prefix("SPORTPOL_W54.  Do you think...", "SPORTPOL_W54", "SPORTPOL") == "Do you think..."
    assert strip_code_prefix("SPORTPOL. Do you think", "SPORTPOL_W54", "SPORTPOL") == "Do you think"
    assert strip_code_prefix("Do you think", "SPORTPOL_W54", "SPORTPOL") == "Do you think"


def test_middle_rule_needs_four_options_and_a_trailing_neither():
    assert ordinal_values("X_W1", ["Better", "Worse", "About the same"]) == [1.0, 2.0, 3.0]
    assert ordinal_values("X_W1", ["A lot", "A little", "Not much", "Not at all", "Neither"]) == [1, 2, 3, 4, 2.5]
