"""Temperature scaling: the transform, the fit (recovers a known T), the question split."""

from __future__ import annotations

import numpy as np
import pytest

from opinionbench.scoring import calibrate as c
from opinionbench.scoring.metrics import pad_rows


def _synthetic(n: int, k: int, true_t: float, seed: int):
    """Human distributions q, and a model that is q sharpened by 1/true_t (so T = true_t undoes it)."""
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(k) * 2.0, size=n)
    p = c.temperature_scale(q, 1.0 / true_t)
    return p, q


def test_temperature_scale_by_hand():
    p = np.array([0.8, 0.2])
    # T = 2: softmax(log p / 2) = sqrt(p) / sum sqrt(p).
    want = np.sqrt(p) / np.sqrt(p).sum()
    np.testing.assert_allclose(c.temperature_scale(p, 2.0), want)
    np.testing.assert_allclose(c.temperature_scale(p, 1.0), p)
    # Zeros (and the zero padding of ragged rows) stay zero; rows still sum to one.
    padded = pad_rows([[0.5, 0.3, 0.2], [0.9, 0.1]])
    scaled = c.temperature_scale(padded, 3.0)
    assert scaled[1, 2] == 0.0
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)


@pytest.mark.parametrize("objective", ["tv", "cross_entropy"])
@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fit_recovers_a_known_temperature(objective, true_t):
    p, q = _synthetic(n=300, k=4, true_t=true_t, seed=7)
    assert c.fit_temperature(p, q, objective) == pytest.approx(true_t, rel=1e-3)


def test_fit_recovers_temperature_under_noise():
    p, q = _synthetic(n=2000, k=5, true_t=1.8, seed=11)
    rng = np.random.default_rng(5)
    noisy_q = np.array([rng.dirichlet(row * 400 + 1e-3) for row in q])  # humans = truth + sampling noise
    assert c.fit_temperature(p, noisy_q, "cross_entropy") == pytest.approx(1.8, rel=0.05)


def test_split_is_by_question_seeded_and_order_free():
    keys = [f"Q{i}" for i in range(20)] * 3  # each question has several group rows
    cal, held = c.split_questions(keys, 0.3, seed=4)
    assert len(cal) == 6 and len(held) == 14 and not cal & held
    cal2, _ = c.split_questions(list(reversed(keys)), 0.3, seed=4)
    assert cal == cal2
    assert c.split_questions(keys, 0.3, seed=5)[0] != cal
    # Degenerate fractions still leave both halves non-empty.
    assert all(len(part) == 1 for part in c.split_questions(["a", "b"], 0.99, seed=0))


def test_calibrate_fits_on_calibration_questions_and_improves_heldout():
    p, q = _synthetic(n=120, k=4, true_t=3.0, seed=2)
    qkeys = [f"Q{i // 2}" for i in range(120)]  # two rows (groups) per question
    cal, held = c.split_questions(qkeys, 0.5, seed=0)
    result, scaled = c.calibrate(p, q, qkeys, cal, "tv")
    assert result.temperature == pytest.approx(3.0, rel=1e-3)
    assert result.n_calibration_questions == len(cal) and result.n_heldout_questions == len(held)
    assert result.heldout_tv_after < result.heldout_tv_before
    assert result.heldout_tv_after == pytest.approx(0.0, abs=1e-4)
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)


def test_reliability_curve_is_diagonal_for_a_perfect_forecast():
    q = np.random.default_rng(0).dirichlet(np.ones(4), size=200)
    curve = c.reliability_curve(list(q), list(q), bins=5)
    np.testing.assert_allclose(curve["predicted"], curve["observed"])
    assert curve["count"].sum() == 800
    with pytest.raises(ValueError, match="option count"):
        c.reliability_curve([[0.5, 0.5]], [[1.0]])


def test_unknown_objective_is_rejected():
    with pytest.raises(ValueError, match="objective"):
        c.fit_temperature(np.eye(2), np.eye(2), "mse")
