"""Weighted distributions against values computed by hand, independently of the build code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from opinionbench.survey import distributions, load_wave
from opinionbench.survey.demographics import HarmonisedAttribute
from opinionbench.survey.weighting import CellIndex, build_cell_index, cells_frame, tally_questions


def question_distributions(qkey: str, answers: np.ndarray, option_codes: list[float], refusal_codes: list[float],
                           weights: np.ndarray, index: CellIndex) -> pd.DataFrame:
    """The distributions rows of one question, through the build's own block tally."""
    return cells_frame([qkey], tally_questions([answers], [option_codes], [refusal_codes], weights, index), index)


def test_tiny_example_by_hand():
    # 5 respondents; answers 1,2,2,99(refused),nan; weights 1,2,3,4,5; two groups A(0,1,2) B(3,4)
    answers = np.array([1.0, 2.0, 2.0, 99.0, np.nan])
    weights = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    attr = HarmonisedAttribute("SEX", ["A", "B"], "F_SEX", np.array([0, 0, 1, 1, -1], dtype=np.int16))
    index = build_cell_index(5, [attr])
    out = question_distributions("Q_W1", answers, [1.0, 2.0], [99.0], weights, index).set_index(["attribute", "group"])
    overall = out.loc[("Overall", "Overall")]
    assert np.allclose(overall["probs"], [1 / 6, 5 / 6])  # (1) vs (2+3) of substantive weight 6
    assert overall["refusal_rate"] == pytest.approx(4 / 10)  # 4 of the 10 weight that answered anything
    assert overall["n"] == 3
    assert overall["n_eff"] == pytest.approx(36 / 14)  # (1+2+3)^2 / (1+4+9)
    a = out.loc[("SEX", "A")]
    assert np.allclose(a["probs"], [1 / 3, 2 / 3]) and a["n"] == 2 and a["refusal_rate"] == 0
    b = out.loc[("SEX", "B")]
    assert np.allclose(b["probs"], [0, 1]) and b["refusal_rate"] == pytest.approx(4 / 7)
    assert b["n_eff"] == pytest.approx(1.0)


def test_group_without_substantive_answers_is_not_a_row():
    answers = np.array([1.0, 99.0])
    attr = HarmonisedAttribute("SEX", ["A", "B"], "F_SEX", np.array([0, 1], dtype=np.int16))
    out = question_distributions("Q_W1", answers, [1.0, 2.0], [99.0], np.ones(2), build_cell_index(2, [attr]))
    assert ("SEX", "B") not in set(zip(out["attribute"], out["group"]))


@pytest.fixture(scope="module")
def sample(sample_sav):
    wave = load_wave(sample_sav)
    raw, _ = pyreadstat.read_sav(str(sample_sav))
    return wave, distributions(wave), raw


def direct_shares(raw: pd.DataFrame, column: str, codes: list[float], mask=None) -> np.ndarray:
    sel = raw[column].isin(codes) & (raw["WEIGHT_W900"] > 0)
    if mask is not None:
        sel &= mask
    totals = raw[sel].groupby(column)["WEIGHT_W900"].sum().reindex(codes, fill_value=0.0)
    return (totals / totals.sum()).to_numpy()


def test_overall_equals_weighted_shares_from_the_sav(sample):
    wave, dist, raw = sample
    for qkey, codes in zip(wave.questions["qkey"], wave.questions["option_codes"]):
        row = dist[(dist.qkey == qkey) & (dist.attribute == "Overall")].iloc[0]
        assert np.allclose(row["probs"], direct_shares(raw, qkey, list(codes)), atol=1e-12)
        assert sum(row["probs"]) == pytest.approx(1.0)


def test_groups_equal_weighted_shares_within_the_group(sample):
    wave, dist, raw = sample
    republicans = raw["F_PARTY_FINAL"] == 1  # label "Republican" in the sample's codebook
    row = dist[(dist.qkey == "GOVSIZE_W900") & (dist.attribute == "POLPARTY") & (dist.group == "Republican")].iloc[0]
    assert np.allclose(row["probs"], direct_shares(raw, "GOVSIZE_W900", [1.0, 2.0], republicans))
    answered = raw["GOVSIZE_W900"].isin([1.0, 2.0]) & republicans
    assert row["n"] == int(answered.sum())
    w = raw.loc[answered, "WEIGHT_W900"]
    assert row["n_eff"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    # demographics drive the answers: Republicans prefer smaller government, Democrats bigger
    dem = dist[(dist.qkey == "GOVSIZE_W900") & (dist.group == "Democrat")].iloc[0]
    assert row["probs"][0] > 0.7 and dem["probs"][1] > 0.7


def test_every_attribute_and_group_is_present_on_the_sample(sample):
    from opinionbench.survey.demographics import attribute_groups

    _, dist, _ = sample
    cells = set(zip(dist.attribute, dist.group))
    for attribute, groups in attribute_groups().items():
        for group in groups:
            assert (attribute, group) in cells, (attribute, group)
    assert len(attribute_groups()) == 12
