"""Each metric against values computed by hand (and scipy where scipy defines it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from opinionbench.scoring import metrics as m
from opinionbench.scoring.registry import row_formulas

ORD5 = [1.0, 2.0, 3.0, 4.0, 5.0]


def test_total_variation_by_hand():
    assert m.total_variation([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.5)
    assert m.total_variation([0.2, 0.3, 0.5], [0.5, 0.3, 0.2]) == pytest.approx(0.3)
    rows = m.total_variation([[1, 0], [0.5, 0.5]], [[0, 1], [0.5, 0.5]])
    np.testing.assert_allclose(rows, [1.0, 0.0])


def test_five_option_ordinal_case_where_wasserstein_differs_from_tv():
    # All mass at the two low options vs the two high ones: TV is 1 (disjoint supports), but the
    # mass has to travel 3 scale points on average: CDF gaps .5, 1, 1, .5 -> W = 3.
    p = [0.5, 0.5, 0.0, 0.0, 0.0]
    q = [0.0, 0.0, 0.0, 0.5, 0.5]
    assert m.total_variation(p, q) == pytest.approx(1.0)
    assert m.wasserstein(p, q, ORD5) == pytest.approx(3.0)
    assert m.representativeness(p, q, ORD5) == pytest.approx(1 - 3 / 4)
    # A small shift: TV 0.2, CDF gaps .2 .1 .1 0 -> W 0.4, representativeness 0.9.
    p2 = [0.2, 0.2, 0.2, 0.2, 0.2]
    q2 = [0.4, 0.1, 0.2, 0.1, 0.2]
    assert m.total_variation(p2, q2) == pytest.approx(0.2)
    assert m.wasserstein(p2, q2, ORD5) == pytest.approx(0.4)
    assert m.representativeness(p2, q2, ORD5) == pytest.approx(0.9)
    # Opposite ends: representativeness 0.
    assert m.representativeness([1, 0, 0, 0, 0], [0, 0, 0, 0, 1], ORD5) == pytest.approx(0.0)


def test_wasserstein_uses_ordinal_positions_not_probability_values():
    # "Neither" placed in the middle of a 4-point scale (ordinal 2.5), as OpinionQA does.
    ordinal = [1.0, 2.0, 3.0, 4.0, 2.5]
    p = [0.1, 0.2, 0.3, 0.1, 0.3]
    q = [0.4, 0.1, 0.1, 0.3, 0.1]
    expected = wasserstein_distance(ordinal, ordinal, p, q)
    assert m.wasserstein(p, q, ordinal) == pytest.approx(expected)
    wrong = wasserstein_distance(p, q)  # the seed script's call: probabilities as values
    assert abs(wrong - expected) > 0.1
    assert m.representativeness(p, q, ordinal) == pytest.approx(1 - expected / 3.0)


def test_vectorised_ragged_rows_match_row_by_row_scipy():
    rng = np.random.default_rng(3)
    ps, qs, xs = [], [], []
    for k in [2, 3, 4, 5, 7, 4]:
        ps.append(rng.dirichlet(np.ones(k)))
        qs.append(rng.dirichlet(np.ones(k)))
        xs.append(np.sort(rng.uniform(0, 10, k)))
    P, Q, X = m.pad_rows(ps), m.pad_rows(qs), m.pad_rows(xs, fill=np.nan)
    got = m.wasserstein(P, Q, X)
    want = [wasserstein_distance(x, x, p, q) for p, q, x in zip(ps, qs, xs)]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    np.testing.assert_allclose(m.total_variation(P, Q), [0.5 * np.abs(p - q).sum() for p, q in zip(ps, qs)])
    spans = np.array([x.max() - x.min() for x in xs])
    np.testing.assert_allclose(m.representativeness(P, Q, X), 1 - np.array(want) / spans)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_metric_ranges_and_identity(k, seed):
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
    ordinal = np.arange(1, k + 1, dtype=float)
    assert 0 <= m.total_variation(p, q) <= 1
    assert 0 <= m.representativeness(p, q, ordinal) <= 1 + 1e-12
    assert m.representativeness(p, p, ordinal) == pytest.approx(1.0)
    assert m.jensen_shannon(p, p) == pytest.approx(1.0)
    # TV bounds W from below on a unit-spaced scale.
    assert m.wasserstein(p, q, ordinal) >= m.total_variation(p, q) - 1e-12


def test_jensen_shannon_similarity_by_hand():
    # Disjoint supports: JS divergence = ln 2, distance = sqrt(ln 2); base 2 gives exactly 1.
    assert m.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1 - np.sqrt(np.log(2)))
    assert m.jensen_shannon([1, 0], [0, 1], base=2) == pytest.approx(0.0)
    # p=(1,0), q=(.5,.5): M=(.75,.25); KL(p||M)=ln(4/3); KL(q||M)=.5 ln(2/3)+.5 ln 2.
    js = 0.5 * np.log(4 / 3) + 0.5 * (0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25))
    assert m.jensen_shannon([1, 0], [0.5, 0.5]) == pytest.approx(1 - np.sqrt(js))


def test_jensen_shannon_skew():
    out = m.jensen_shannon_skew(pd.Series({"USA": 0.9, "Japan": 0.7, "Nigeria": 0.6}))
    assert out == {"skew": pytest.approx(0.3), "most_similar": "USA", "least_similar": "Nigeria"}
    assert np.isnan(m.jensen_shannon_skew(pd.Series(dtype=float))["skew"])


def test_steerability_on_a_constructed_case():
    # Two groups, two persona formats, two questions each. Per group, the best format by mean:
    #   Democrat: bio (.9+.7)/2=.8 beats qa (.6+.6)/2=.6; Republican: qa (.5+.7)/2=.6 beats bio .4.
    # Steerability = (.8 + .6)/2 = .7.
    rows = [
        ("q1", "POLPARTY", "Democrat", "qa", 0.6), ("q2", "POLPARTY", "Democrat", "qa", 0.6),
        ("q1", "POLPARTY", "Democrat", "bio", 0.9), ("q2", "POLPARTY", "Democrat", "bio", 0.7),
        ("q1", "POLPARTY", "Republican", "qa", 0.5), ("q2", "POLPARTY", "Republican", "qa", 0.7),
        ("q1", "POLPARTY", "Republican", "bio", 0.4), ("q2", "POLPARTY", "Republican", "bio", 0.4),
    ]
    frame = pd.DataFrame(rows, columns=["qkey", "attribute", "group", "steering", "representativeness"])
    value, per_group = m.steerability(frame)
    assert value == pytest.approx(0.7)
    best = dict(zip(per_group["group"], per_group["best_steering"]))
    assert best == {"Democrat": "bio", "Republican": "qa"}
    assert dict(zip(per_group["group"], per_group["representativeness"])) == pytest.approx(
        {"Democrat": 0.8, "Republican": 0.6})


def test_knowledge_to_simulation_gap():
    assert m.knowledge_to_simulation_gap([0.3, 0.5], [0.2, 0.2]) == pytest.approx(0.4 / 0.2 - 1)
    assert np.isnan(m.knowledge_to_simulation_gap([0.3], [0.0]))


def test_bootstrap_ci_is_seeded_and_covers_the_mean():
    values = np.random.default_rng(0).normal(0.7, 0.1, size=200)
    low, high = m.bootstrap_ci(values, n_boot=2000, seed=1)
    assert low < values.mean() < high
    # Normal theory: half-width ~ 1.96 * sd / sqrt(n).
    assert (high - low) / 2 == pytest.approx(1.96 * values.std(ddof=1) / np.sqrt(200), rel=0.15)
    assert m.bootstrap_ci(values, n_boot=2000, seed=1) == (low, high)
    assert m.bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    assert all(np.isnan(m.bootstrap_ci([])))
    joint = m.bootstrap_means(np.c_[values, 2 * values], n_boot=50, seed=2)
    np.testing.assert_allclose(joint[:, 1], 2 * joint[:, 0])


def test_group_reference_scores_each_group_against_the_others():
    truth = pd.DataFrame({
        "qkey": ["q1"] * 3,
        "attribute": ["POLPARTY"] * 3,
        "group": ["Democrat", "Republican", "Independent"],
        "probs": [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
    })
    ref = m.group_reference(truth, {"q1": [1.0, 2.0, 3.0]}, row_formulas())
    assert len(ref) == 6  # ordered pairs of distinct groups
    dem_rep = ref[(ref.group == "Democrat") & (ref.group_source == "Republican")]["representativeness"].item()
    assert dem_rep == pytest.approx(0.0)
    dem_ind = ref[(ref.group == "Democrat") & (ref.group_source == "Independent")]["representativeness"].item()
    assert dem_ind == pytest.approx(0.5)
    assert (ref["tv"] == 1.0).all()


def test_bootstrap_means_match_a_loop_over_the_same_draws_with_and_without_nan():
    values = np.array([0.2, 0.9, 0.4, 0.7, 0.5])
    idx = np.random.default_rng(3).integers(0, values.size, size=(40, values.size))
    np.testing.assert_allclose(m.bootstrap_means(values, n_boot=40, seed=3), [values[i].mean() for i in idx])
    holed = values.copy()
    holed[1] = np.nan  # a question a model failed: left out of each resample's mean, not counted as 0
    np.testing.assert_allclose(m.bootstrap_means(holed, n_boot=40, seed=3), [np.nanmean(holed[i]) for i in idx])
