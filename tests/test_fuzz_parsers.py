"""Hypothesis fuzzing of the parsers that read outside data: no crash but the project's own clear errors.

OCR segmentation (any words, boxes and confidences tesseract might return), the verbalized-
distribution parser (any model reply), the reviewed-corrections file and the exclusion rules
(any YAML a person might write).
"""

from __future__ import annotations

import json
import string
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opinionbench.errors import OpinionBenchError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# --- verbalized-distribution parser --------------------------------------------------------

verbalized = pytest.importorskip("opinionbench.elicit.verbalized", reason="elicit.verbalized (issue 4) not present")

json_like = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers(-10**6, 10**6) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.sampled_from(list("ABCDEFabc") + ["A.", "B)", "x"]), inner, max_size=6),
    max_leaves=12,
)


def _check_reply(text: str, n: int) -> None:
    try:
        probs = verbalized.parse_distribution(text, n)
    except verbalized.ReplyError:
        return
    assert len(probs) == n and np.isfinite(probs).all() and (probs >= 0).all()
    assert abs(float(probs.sum()) - 1.0) < 1e-9


@FUZZ
@given(st.text(max_size=300), st.integers(2, 8))
def test_verbalized_parser_any_text(text, n):
    _check_reply(text, n)


@FUZZ
@given(json_like, st.integers(2, 6), st.text(alphabet=string.printable, max_size=20))
def test_verbalized_parser_json_shaped_replies(value, n, prefix):
    _check_reply(prefix + json.dumps(value), n)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from("ABCDEFG"), st.floats(-5, 500, allow_nan=False), st.booleans()), max_size=8),
       st.integers(2, 6))
def test_verbalized_parser_letter_pairs(pairs, n):
    _check_reply(" ".join(f"{l}: {v:.3f}{'%' if pct else ''}" for l, v, pct in pairs), n)


# --- OCR segmentation ---------------------------------------------------------------------

segment_mod = pytest.importorskip("opinionbench.questionnaire.segment", reason="questionnaire.segment not present")
ocr_mod = pytest.importorskip("opinionbench.questionnaire.ocr", reason="questionnaire.ocr not present")

words_token = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + ".,?%<>-()'|~", min_size=1, max_size=12),
    st.sampled_from(["Q1.", "ASK", "ALL:", "12", "<1", "%", "Refused", "(VOL.)", "FORM", "1", "Page", "N=3,000", "W900"]),
)
word_row = st.fixed_dictionaries({
    "page": st.integers(1, 3), "block": st.integers(0, 4), "par": st.integers(0, 3), "line": st.integers(0, 6),
    "left": st.integers(0, 1700), "top": st.integers(0, 2200), "width": st.integers(1, 400), "height": st.integers(1, 60),
    "conf": st.floats(-1, 100, allow_nan=False), "text": words_token,
})


@FUZZ
@given(st.lists(word_row, max_size=60))
def test_segmentation_of_any_ocr_words(rows):
    frame = pd.DataFrame(rows, columns=[c for c in ocr_mod.OCR_COLUMNS if c != "dpi"] if rows else None)
    for column in ocr_mod.OCR_COLUMNS:
        if column not in frame.columns:
            frame[column] = 200 if column == "dpi" else (0 if column != "text" else "")
    frame = frame[ocr_mod.OCR_COLUMNS]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blocks = segment_mod.segment(frame)
    except OpinionBenchError:
        return
    for block in blocks:
        assert isinstance(block.to_dict(), dict)


# --- reviewed-corrections file and exclusion rules (YAML written by people) ----------------

review = pytest.importorskip("opinionbench.questionnaire.review", reason="questionnaire.review (issue 3) not present")

yamlish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=15) | st.dates().map(str),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["corrections", "qkey", "field", "value", "reviewer", "date", "reason", "wording_patterns",
                         "pattern", "qkeys", "x"]), inner, max_size=6),
    max_leaves=15,
)


@FUZZ
@given(st.one_of(yamlish.map(lambda v: yaml.safe_dump(v)), st.text(max_size=200)))
def test_corrections_file_any_content(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("reviews") / "corrections.yaml"
    path.write_text(text)
    try:
        entries = review.load_reviews(path)
    except OpinionBenchError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert all(e.qkey and e.reviewer for e in entries)


@FUZZ
@given(st.one_of(yamlish.map(lambda v: yaml.safe_dump(v)), st.text(max_size=200)))
def test_exclusion_rules_any_content(tmp_path_factory, text):
    from opinionbench.validation.exclusions import load_rules

    path = tmp_path_factory.mktemp("rules") / "exclusions.yaml"
    path.write_text(text)
    try:
        rules = load_rules(path)
    except OpinionBenchError as exc:
        assert str(path) in str(exc)
        return
    assert all(r.reason for r in rules.wording_patterns)


# --- the validation's own readers of outside text: wording checks and question checks ----------

@FUZZ
@given(st.text(max_size=400))
def test_wording_checks_of_any_text_are_shares(text):
    from opinionbench.validation.words import debris_share, word_share

    assert 0.0 <= word_share(text) <= 1.0 and 0.0 <= debris_share(text) <= 1.0


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=10), st.none(), st.floats()), max_size=6),
       st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6),
       st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.text(max_size=3)), max_size=6))
def test_question_and_distribution_checks_of_any_lists(options, ordinal, probs):
    from opinionbench.validation import derive

    questions = pd.DataFrame({"qkey": ["Q_W1"], "question": ["How are you?"], "options": [options], "ordinal": [ordinal],
                              "text_source": ["codebook"]})
    cells = pd.DataFrame({"qkey": ["Q_W1"], "attribute": ["Overall"], "group": ["Overall"], "probs": [probs],
                          "refusal_rate": [0.0], "n": [10], "n_eff": [10.0]})
    q = derive.question_checks(questions, cells)
    d = derive.distribution_checks(cells, questions)
    assert len(q) == 1 and len(d) == 1
    error = d.loc[0, "probs_sum_error"]
    assert np.isnan(error) if not probs else (error >= 0 or np.isinf(error))
