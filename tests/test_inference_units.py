"""Inference arithmetic with no model: letter probabilities (combine, top-k fill), option orders,
the verbalized and sequence reply parsers. Hand-made inputs, hand-computed expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opinionbench.elicit.logprobs import candidates, letter_probabilities
from opinionbench.elicit.sequence import first_letter, letter_sequence
from opinionbench.elicit.verbalized import ReplyError, parse_distribution
from opinionbench.models.base import NextToken
from opinionbench.models.json_grammar import json_program, schema_letters
from opinionbench.prompting import QuestionError, check_options, cyclic_orders, to_original


def _nt(probs: dict[str, float], exhaustive: bool) -> NextToken:
    return NextToken({k: math.log(v) for k, v in probs.items()}, exhaustive=exhaustive)


# --- logprobs: "A" and " A", sum vs max, out-of-option mass ------------------------------------

def test_sum_adds_both_tokenisations_and_records_all_other_mass():
    probs, outside = letter_probabilities(_nt({"A": .3, " A": .2, "B": .1, " B": .25}, True), 2, "sum")
    np.testing.assert_allclose(probs, [.5 / .85, .35 / .85])
    assert outside == pytest.approx(0.15)


def test_max_keeps_the_likelier_tokenisation_but_mass_outside_counts_every_variant():
    probs, outside = letter_probabilities(_nt({"A": .3, " A": .2, "B": .1, " B": .25}, True), 2, "max")
    np.testing.assert_allclose(probs, [.3 / .55, .25 / .55])
    assert outside == pytest.approx(0.15)  # the " A" mass is on an option, whichever variant is kept


def test_exhaustive_letter_that_is_not_a_single_token_gets_zero():
    probs, outside = letter_probabilities(_nt({"A": .6, "B": .2}, True), 3, "sum")
    np.testing.assert_allclose(probs, [.75, .25, 0.0])
    assert outside == pytest.approx(0.2)


def test_tokens_that_merely_contain_a_letter_are_not_options():
    probs, _ = letter_probabilities(_nt({"A": .5, "B": .25, "AB": .1, "  B": .1, "a": .05}, True), 2, "sum")
    np.testing.assert_allclose(probs, [2 / 3, 1 / 3])


# --- top-k fill rule (API backends): min(least listed, leftover / missing) ----------------------

def test_fill_rule_shares_the_leftover_when_it_is_smaller():
    # listed sum 0.95 -> leftover 0.05 shared by C and D: 0.025 each (< least listed 0.1)
    top = _nt({"A": .5, " A": .1, "B": .2, "Hello": .15}, exhaustive=False)
    probs, outside = letter_probabilities(top, 4, "sum")
    raw = np.array([.6, .2, .025, .025])
    np.testing.assert_allclose(probs, raw / raw.sum())
    assert outside == pytest.approx(1 - raw.sum())


def test_fill_rule_caps_at_the_least_listed_probability():
    # leftover 0.48 for one missing letter, but it cannot be likelier than the least listed (0.02)
    probs, _ = letter_probabilities(_nt({"A": .5, "B": .02}, exhaustive=False), 3, "sum")
    raw = np.array([.5, .02, .02])
    np.testing.assert_allclose(probs, raw / raw.sum())


def test_fill_rule_with_max_combine_and_nothing_left_over():
    # listed sum 1.0: the missing letter gets min(0.1, 0.0) = 0
    probs, outside = letter_probabilities(_nt({"A": .7, " A": .2, " B": .1}, exhaustive=False), 3, "max")
    np.testing.assert_allclose(probs, [.7 / .8, .1 / .8, 0.0], atol=1e-12)
    assert outside == pytest.approx(0.0, abs=1e-12)  # " A" is on an option even though max drops it


def test_no_mass_on_any_option_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="no probability"):
        letter_probabilities(NextToken({"A": -math.inf, "B": -math.inf, "x": 0.0}, True), 2, "sum")


def test_candidates_are_both_tokenisations_of_each_letter():
    assert candidates(3) == ["A", " A", "B", " B", "C", " C"]


# --- option orders ------------------------------------------------------------------------------

def test_cyclic_orders_and_mapping_back_to_the_original_order():
    assert cyclic_orders(3, 2) == [[0, 1, 2], [1, 2, 0]]
    assert cyclic_orders(2, 5) == [[0, 1], [1, 0]]  # capped at the number of options
    # order [1, 2, 0]: letter A shows option 1, B option 2, C option 0
    np.testing.assert_allclose(to_original(np.array([.7, .2, .1]), [1, 2, 0]), [.1, .7, .2])


def test_a_question_with_one_option_cannot_be_asked():
    with pytest.raises(QuestionError, match="Q1_W1: has 1 option"):
        check_options("Q1_W1", ["Yes"])


# --- verbalized parser ---------------------------------------------------------------------------

@pytest.mark.parametrize("reply,expected", [
    ('{"A": 0.2, "B": 0.8}', [.2, .8]),
    ('```json\n{"A": 0.25, "B": 0.75}\n```', [.25, .75]),
    ('Sure! Here it is: {"a": 1, "b": 3} Hope that helps.', [.25, .75]),
    ('{"A": "30%", "B": "70%"}', [.3, .7]),
    ('{"A": 30, "B": 70}', [.3, .7]),                       # percentages without the sign
    ('{"A.": 0.5, "B)": 0.5}', [.5, .5]),
    ("[0.1, 0.9]", [.1, .9]),
    ("A: 40%\nB: 60%", [.4, .6]),
    ("A = 0.3, B = 0.3", [.5, .5]),                           # renormalised
    ('{not json} then {"A": 0.6, "B": 0.4}', [.6, .4]),
])
def test_verbalized_replies_that_are_distributions(reply, expected):
    np.testing.assert_allclose(parse_distribution(reply, 2), expected)


@pytest.mark.parametrize("reply,why", [
    ('{"A": 0.5}', "missing"),
    ('{"A": 0.5, "B": 0.3, "C": 0.2}', "unexpected"),
    ('{"A": -0.5, "B": 1.5}', "negative"),
    ('{"A": 0, "B": 0}', "sum to 0"),
    ('{"A": true, "B": 0.5}', "not a number"),
    ("[0.5, 0.3, 0.2]", "list of 3"),
    ("A: 40%\nA: 60%", "twice"),
    ("I would say mostly the first one.", "no JSON"),
    ("", "no JSON"),
])
def test_verbalized_replies_that_are_not_are_reply_errors(reply, why):
    with pytest.raises(ReplyError, match=why):
        parse_distribution(reply, 2)


# --- the constrained JSON grammar of verbalized (the hf backend follows it) ---------------------

def _chars(text: str, add_special_tokens: bool = False) -> dict:
    """A tokenizer with one token per character (its code point)."""
    return {"input_ids": [ord(c) for c in text]}


def _follow(program, choices: str) -> tuple[str, str, list[tuple[int, int]]]:
    """Drive a grammar program, the model choosing `choices` in turn, one per read; returns the
    reply, the text a row holds after every feed (each feed's retracted tokens taken off first)
    and, per send, (tokens retracted by the feed that answered it, how far back each read looked)."""
    held = list(next(program).tokens)
    picks = iter(choices)
    sends: list[tuple[int, list[int]]] = []

    def best(ids: list[int], back: int = 0) -> int:
        sends[-1][1].append(back)
        return [chr(i) for i in ids].index(next(picks))

    while True:
        sends.append((0, []))
        try:
            feed = program.send(best)
        except StopIteration as done:
            return done.value, "".join(chr(t) for t in held), sends
        sends[-1] = (feed.retract, sends[-1][1])
        held = held[:len(held) - feed.retract] + feed.tokens


DIGIT_IDS = {c: ord(c) for c in "0123456789."}


def test_the_grammar_forces_the_structure_and_lets_the_model_choose_each_digit():
    from opinionbench.elicit.verbalized import schema

    assert schema_letters(schema(2)) == ["A", "B"]
    assert schema_letters({"type": "object", "properties": {"A": {"type": "string"}}, "required": ["A"]}) is None
    assert schema_letters(None) is None
    # A: first digit 0, then 2, then 5; B: first digit 1 (then .00 is forced); C: 0, 0, 7
    text, held, sends = _follow(json_program(["A", "B", "C"], _chars, DIGIT_IDS), "0251007")
    assert text == '{"A": 0.25, "B": 1.00, "C": 0.07}'
    assert held == '{"A": 0.25, "B": 1.00, "C": 0.0'  # what was fed, in order (the last digit is not)
    assert sends == [(0, [0])] * 7  # one read per feed, after its last token; nothing taken back
    np.testing.assert_allclose(parse_distribution(text, 3), [0.25 / 1.32, 1 / 1.32, 0.07 / 1.32])


def test_a_guessed_zero_is_read_from_the_same_feed_and_taken_back_when_it_misses():
    """With `guess`, each key is fed with `0.`: the first digit is read two tokens back and the
    tenths after the guess from that same feed (one feed fewer per number); when the first digit is
    1 the next feed takes the guess back. The reply and what a row ends up holding are the same."""
    program = json_program(["A", "B", "C"], _chars, DIGIT_IDS, guess=True)
    text, held, sends = _follow(program, "0251007")
    assert text == '{"A": 0.25, "B": 1.00, "C": 0.07}'
    assert held == _follow(json_program(["A", "B", "C"], _chars, DIGIT_IDS), "0251007")[1]
    # A: 0 two back and 2 after the guess from one feed, then 5; B (fed `0.2`, A's tenths guessed
    # again): 1 three back, the guess missed and is taken back, all three tokens, by the feed with
    # C's key; C (fed `0.0`, 1.00's tenths): 0, 0 and 7 from one feed. Four feeds, not seven.
    assert sends == [(0, [2, 0]), (0, [0]), (3, [3]), (0, [3, 1, 0])]
    first = json_program(["A"], _chars, DIGIT_IDS, guess=True)
    assert "".join(chr(t) for t in next(first).tokens) == '{"A": 0.'


def test_the_tenths_before_are_guessed_again_and_only_they_are_taken_back_when_they_differ():
    """After the first number the guess goes on with the tenths digit of the number before: when
    it holds, the hundredths come from the same feed (one feed a number); when the model chooses
    other tenths only that digit is taken back. Replies and what a row holds equal the plain
    program's."""
    for choices, letters, reply, expected in [
        ("025025026", ["A", "B", "C"], '{"A": 0.25, "B": 0.25, "C": 0.26}',
         [(0, [2, 0]), (0, [0]), (0, [3, 1, 0]), (0, [3, 1, 0])]),
        ("025035", ["A", "B"], '{"A": 0.25, "B": 0.35}', [(0, [2, 0]), (0, [0]), (1, [3, 1]), (0, [0])]),
    ]:
        text, held, sends = _follow(json_program(letters, _chars, DIGIT_IDS, guess=True), choices)
        assert text == reply and sends == expected
        assert held == _follow(json_program(letters, _chars, DIGIT_IDS), choices)[1]


# --- sequence parsers ------------------------------------------------------------------------------

@pytest.mark.parametrize("reply,letter", [
    ("B", "B"), (" B.", "B"), ("(C) Not much", "C"), ("Answer: A", "A"), ("b", "B"),
    ("D", None),            # not an option of a 3-option question
    ("because", None), ("", None), ("The answer", None),
])
def test_first_letter(reply, letter):
    assert first_letter(reply, 3) == letter


def test_letter_sequence_marks_tokens_that_are_not_letters():
    assert letter_sequence("A B, C (A) x D.", 3) == ["A", "B", "C", "A", None, None]


# --- cells: one rule for model runs and baselines ---------------------------------------------------

def test_cells_public_first_then_groups_and_only_where_the_dataset_has_truth():
    import pandas as pd

    from opinionbench.inference.cells import cells_to_predict

    rows = [("Q1", "Overall", "Overall"), ("Q1", "POLPARTY", "Republican"), ("Q1", "POLPARTY", "Democrat"),
            ("Q1", "AGE", "18-29"), ("Q2", "POLPARTY", "Democrat")]  # Q2: no Overall (per-country data)
    dist = pd.DataFrame(rows, columns=["qkey", "attribute", "group"])
    groups = {"POLPARTY": ["Republican", "Democrat"]}
    assert cells_to_predict(dist, ["Q2", "Q1"], groups) == [  # baselines: public + groups, with truth only
        ("Q2", "POLPARTY", "Democrat"), ("Q1", "Overall", "Overall"),
        ("Q1", "POLPARTY", "Republican"), ("Q1", "POLPARTY", "Democrat")]  # groups in params order
    assert cells_to_predict(dist, ["Q1", "Q2"], None) == [  # every group: attributes, then groups, sorted
        ("Q1", "Overall", "Overall"), ("Q1", "AGE", "18-29"), ("Q1", "POLPARTY", "Democrat"),
        ("Q1", "POLPARTY", "Republican"), ("Q2", "POLPARTY", "Democrat")]
    # the unsteered model is asked every question, even where the dataset has no Overall
    assert cells_to_predict(dist, ["Q1", "Q2"], groups, steering="none") == [
        ("Q1", "Overall", "Overall"), ("Q2", "Overall", "Overall")]
    assert cells_to_predict(dist, ["Q1", "Q2"], groups, steering="persona") == [
        ("Q1", "POLPARTY", "Republican"), ("Q1", "POLPARTY", "Democrat"), ("Q2", "POLPARTY", "Democrat")]
