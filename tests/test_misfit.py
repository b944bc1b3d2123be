"""Misfit, realised gain and their relation (w2s.analysis.misfit)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from w2s.analysis import misfit as m


def test_misfit_of_identical_predictions_is_zero():
    p = np.array([[0.2, 0.8], [1.0, 0.0], [0.5, 0.5]])
    assert m.misfit(p, p) == 0.0
    assert m.misfit(p, p, kind="regression") == 0.0
    assert m.misfit(np.array([1.5, -2.0]), np.array([1.5, -2.0]), kind="regression") == 0.0


def test_squared_misfit_on_three_values():
    student, weak = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])
    assert m.misfit(student, weak, kind="regression") == pytest.approx(5 / 3)


def test_kl_misfit_puts_the_student_first():
    # KL(0.5 || 0.25) = 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25) = 0.5 ln(4/3)
    assert m.misfit(np.array([0.5]), np.array([0.25])) == pytest.approx(0.5 * math.log(4 / 3))
    # the other direction differs: KL(0.25 || 0.5) = 0.25 ln 0.5 + 0.75 ln 1.5
    reverse = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert m.misfit(np.array([0.25]), np.array([0.5])) == pytest.approx(reverse)
    assert abs(reverse - 0.5 * math.log(4 / 3)) > 0.01


def test_binary_1d_equals_two_columns():
    s, w = np.array([0.1, 0.7, 0.95]), np.array([0.3, 0.6, 0.5])
    two = lambda p: np.column_stack([1 - p, p])  # noqa: E731
    assert m.misfit(s, w) == pytest.approx(m.misfit(two(s), two(w)))


def test_realised_gain_by_hand():
    gold = np.array([0, 1, 1])
    weak = np.array([0.4, 0.4, 0.9])  # predicts 0, 0, 1: one mistake
    student = np.array([0.1, 0.8, 0.9])  # no mistakes
    assert m.realised_gain(gold, weak, student, loss="zero_one") == pytest.approx(1 / 3)
    weak_ce = -(math.log(0.6) + math.log(0.4) + math.log(0.9)) / 3
    student_ce = -(math.log(0.9) + math.log(0.8) + math.log(0.9)) / 3
    assert m.realised_gain(gold, weak, student) == pytest.approx(weak_ce - student_ce)
    weak_brier = (2 * 0.4**2 + 2 * 0.6**2 + 2 * 0.1**2) / 3
    student_brier = (2 * 0.1**2 + 2 * 0.2**2 + 2 * 0.1**2) / 3
    assert m.realised_gain(gold, weak, student, loss="brier") == pytest.approx(
        weak_brier - student_brier
    )


def test_regression_report_by_hand():
    rep = m.misfit_report(np.zeros(2), np.ones(2), np.full(2, 0.5), kind="regression")
    assert rep["gain_squared"] == pytest.approx(0.75)
    assert rep["misfit_squared"] == pytest.approx(0.25)
    assert rep["gain_minus_misfit_squared"] == pytest.approx(0.5)


def test_classification_report_is_consistent():
    gold = np.array([0, 1, 1])
    weak, student = np.array([0.4, 0.4, 0.9]), np.array([0.1, 0.8, 0.9])
    rep = m.misfit_report(gold, weak, student)
    assert rep["gain_accuracy"] == pytest.approx(1 / 3)
    assert rep["misfit_kl"] == pytest.approx(m.misfit(student, weak))
    assert rep["gain_minus_misfit_kl"] == pytest.approx(
        rep["gain_cross_entropy"] - rep["misfit_kl"]
    )
    assert rep["gain_minus_misfit_squared"] == pytest.approx(
        rep["gain_brier"] - rep["misfit_squared"]
    )


def test_least_squares_projection_gain_equals_misfit():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200, 5))
    gold = z @ rng.standard_normal(5)  # realisable: truth in the span of z
    weak = gold + rng.standard_normal(200)  # any weak predictor
    student = z @ np.linalg.lstsq(z, weak, rcond=None)[0]  # projection onto span(z)
    rep = m.misfit_report(gold, weak, student, kind="regression")
    assert rep["misfit_squared"] > 0.5
    assert rep["gain_minus_misfit_squared"] == pytest.approx(0.0, abs=1e-10)


def _mixture_problem(seed: int):
    """A convex class (mixtures of 4 fixed predictors) holding gold, and a weak predictor."""
    rng = np.random.default_rng(seed)
    n, c, k = 60, 3, 4
    basis = rng.dirichlet(np.ones(c), size=(k, n))  # (k, n, c)
    gold = np.tensordot(rng.dirichlet(np.ones(k)), basis, axes=1)
    weak = rng.dirichlet(np.ones(c) * 0.7, size=n)
    return basis, gold, weak


def _project(basis: np.ndarray, objective) -> np.ndarray:
    """The mixture minimising ``objective(f)`` over the simplex of mixture weights."""
    k = len(basis)
    res = minimize(
        lambda a: objective(np.tensordot(a, basis, axes=1)),
        np.full(k, 1 / k),
        method="SLSQP",
        bounds=[(0, 1)] * k,
        constraints={"type": "eq", "fun": lambda a: a.sum() - 1},
        options={"ftol": 1e-12, "maxiter": 500},
    )
    a = np.clip(res.x, 0, None)
    return np.tensordot(a / a.sum(), basis, axes=1)


def test_kl_projection_satisfies_pythagorean_inequality():
    """Student = argmin over a convex class of E KL(f || weak): CE gain >= KL(student || weak)."""
    basis, gold, weak = _mixture_problem(1)
    student = _project(basis, lambda f: m.misfit(f, weak))
    gain = m.realised_gain(gold, weak, student)  # soft gold: CE differences = KL differences
    fit = m.misfit(student, weak)
    assert fit > 0.05
    assert gain >= fit - 1e-6


def test_forward_kl_student_is_not_covered_by_the_bound():
    """The direction matters: a student fit by forward KL (ordinary CE) can break it."""
    basis, gold, weak = _mixture_problem(1)
    student = _project(basis, lambda f: m.misfit(weak, f))  # E KL(weak || f)
    assert m.realised_gain(gold, weak, student) < m.misfit(student, weak) - 0.01


def test_select_and_evaluate_weak_by_misfit():
    errors, misfits = np.array([0.3, 0.5, 0.4]), np.array([0.0, 0.35, 0.05])
    assert m.select_weak_by_misfit(errors, misfits) == 1  # 0.3, 0.15, 0.35
    out = m.evaluate_weak_selection(errors, misfits, np.array([0.3, 0.16, 0.36]))
    assert out["chosen"] == 1 and out["best"] == 1 and out["lowest_weak_error"] == 0
    assert out["regret"] == 0.0
    assert out["regret_lowest_weak_error"] == pytest.approx(0.14)


def test_fit_gain_vs_misfit():
    misfits = np.array([0.0, 0.1, 0.2, 0.4])
    fit = m.fit_gain_vs_misfit(2 * misfits + 1, misfits)
    assert fit.slope == pytest.approx(2.0)
    assert fit.intercept == pytest.approx(1.0)
    assert fit.r == pytest.approx(1.0)
    assert all(math.isnan(v) for v in m.fit_gain_vs_misfit(np.ones(3), np.ones(3)))


def test_plot_writes_png(tmp_path):
    path = m.plot_gain_vs_misfit(
        [0.1, 0.2, 0.35], [0.1, 0.21, 0.3], ["a", "b", "c"], tmp_path / "g.png"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "call",
    [
        lambda: m.misfit(np.array([0.1, 0.2]), np.array([0.1])),
        lambda: m.misfit(np.array([0.1]), np.array([0.1]), kind="ranking"),
        lambda: m.misfit(np.array([1.2]), np.array([0.1])),
        lambda: m.realised_gain(np.array([0, 2]), np.array([0.1, 0.2]), np.array([0.1, 0.2])),
        lambda: m.prediction_loss(np.array([0, 1]), np.array([0.1, 0.2]), loss="hinge"),
        lambda: m.select_weak_by_misfit(np.array([0.1, 0.2]), np.array([0.1])),
    ],
)
def test_bad_inputs_raise(call):
    with pytest.raises(ValueError):
        call()
