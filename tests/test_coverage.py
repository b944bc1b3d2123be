"""Coverage, pseudolabel correction and expansion (w2s.analysis.coverage)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from w2s.analysis import coverage as cv

WEAK = np.array([0.9, 0.5, 0.2, 0.6])  # confidences 0.9, 0.5, 0.8, 0.6


def test_coverage_mask_by_threshold_and_by_fraction():
    assert cv.coverage_mask(WEAK, threshold=0.7).tolist() == [True, False, True, False]
    assert cv.coverage_mask(WEAK).tolist() == [True, False, True, False]  # default: half
    assert cv.coverage_mask(WEAK, coverage=0.75).tolist() == [True, False, True, True]
    assert cv.coverage_mask(WEAK, coverage=0.0).sum() == 0
    two_col = np.column_stack([1 - WEAK, WEAK])
    assert cv.coverage_mask(two_col, threshold=0.7).tolist() == [True, False, True, False]
    with pytest.raises(ValueError):
        cv.coverage_mask(WEAK, threshold=0.7, coverage=0.5)


# gold 1 1 0 0 1 0; weak predicts 1 0 1 0 0 1 (wrong at 1, 2, 4, 5); first four covered
GOLD = np.array([1, 1, 0, 0, 1, 0])
WEAK6 = np.array([0.9, 0.2, 0.8, 0.1, 0.3, 0.6])
STUDENT6 = np.array([0.8, 0.7, 0.9, 0.2, 0.6, 0.4])  # predicts 1 1 1 0 1 0
COVERED = np.array([True, True, True, True, False, False])


def test_pseudolabel_correction_by_hand():
    out = cv.pseudolabel_correction(GOLD, WEAK6, STUDENT6, COVERED)
    assert out["correction_rate"] == 0.5  # of weak mistakes 1 and 2, the student fixes 1
    assert out["corruption_rate"] == 0.0  # it keeps weak-correct 0 and 3
    assert out["weak_error_covered"] == 0.5
    assert out["student_error_covered"] == 0.25
    assert out["n_covered_weak_wrong"] == 2


def test_coverage_expansion_by_hand():
    out = cv.coverage_expansion(GOLD, STUDENT6, COVERED)
    assert out["student_accuracy_covered"] == 0.75
    assert out["student_accuracy_uncovered"] == 1.0


def test_empty_sets_give_nan():
    out = cv.pseudolabel_correction(GOLD, WEAK6, STUDENT6, np.zeros(6, bool))
    assert np.isnan(out["correction_rate"]) and np.isnan(out["weak_error_covered"])


def test_expansion_estimate_by_hand():
    #            A good   B good   C bad     D unc     E unc       G unc (next to B)
    x = np.array([[0, 0], [0, 1], [0, 0.2], [10, 10], [10, 10.5], [0, 1.1]], float)
    gold = np.array([0, 0, 0, 1, 1, 0])
    weak = np.array([0, 0, 1, 0, 0, 0])
    covered = np.array([True, True, True, False, False, False])
    out = cv.expansion_estimate(x, weak, gold, covered, k=1, metric="euclidean")
    assert out["n_bad"] == 1 and out["n_uncovered"] == 3
    assert out["bad_reach"] == 1.0  # C's neighbour is A
    assert out["bad_expansion"] == 1.0
    assert out["bad_majority_correct"] == 1.0  # A's weak label 0 is C's gold
    assert out["uncovered_reach"] == pytest.approx(1 / 3)  # only G reaches B
    assert out["uncovered_good_neighbour_fraction"] == pytest.approx(1 / 3)
    assert out["uncovered_majority_correct"] == pytest.approx(1 / 3)


def test_coverage_report_is_flat_and_json_serialisable():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((6, 4))
    rep = cv.coverage_report(GOLD, WEAK6, STUDENT6, strong_features=feats, coverage=4 / 6, k=2)
    assert rep["coverage_fraction"] == pytest.approx(4 / 6)
    assert rep["correction_rate"] == 0.5  # the four most confident are the first four
    assert rep["weak_accuracy_uncovered"] == 0.0
    assert "expansion_bad_reach" in rep
    assert all(v is None or isinstance(v, float) for v in rep.values())
    json.dumps(rep, allow_nan=False)
    full = cv.coverage_report(GOLD, WEAK6, STUDENT6, threshold=0.0)
    assert full["student_accuracy_uncovered"] is None  # nothing uncovered
    assert not any(k.startswith("expansion_") for k in full)
