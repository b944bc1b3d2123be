"""Each theory simulator reproduces its qualitative claim (quick mode, fixed seed)."""

from __future__ import annotations

import json

import pytest

from w2s.analysis.simulators import SIMULATORS, run_simulator
from w2s.errors import UnknownNameError


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    return out, {name: run_simulator(name, out, seed=0, quick=True) for name in SIMULATORS.names()}


def test_files_are_written(results):
    out, res = results
    for name in SIMULATORS.names():
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert json.loads((out / f"{name}.json").read_text()) == res[name]


def test_unknown_name_lists_the_simulators(tmp_path):
    with pytest.raises(UnknownNameError, match="refinement.*misfit.*feature_learning.*coverage"):
        run_simulator("nope", tmp_path)
    assert not list(tmp_path.iterdir())


def test_refinement_decays_exponentially_naive_plateaus(results):
    r = results[1]["refinement"]
    assert r["refine_log_error_slope"] < -0.05
    assert r["naive_plateau"] >= 0.9 * r["weak_bias"]  # naive converges to the weak bias
    assert min(r["naive_error"]) >= 0.9 * r["weak_bias"]
    assert r["refine_error"][-1] < 0.5 * r["weak_bias"]  # refinement gets well below it


def test_misfit_bounds_and_predicts_gain(results):
    r = results[1]["misfit"]
    assert r["min_gain_minus_misfit"] >= -0.05  # gain >= misfit - eps, every weak model
    assert r["r"] > 0.9
    assert 0.8 < r["slope"] < 1.2


def test_feature_learning_early_stopping_beats_teacher_and_overtraining(results):
    ab = results[1]["feature_learning"]["abundant"]
    assert ab["early_stopped_error"] < ab["teacher_error"] - 0.05
    assert ab["early_stopped_error"] < ab["final_error"] - 0.05
    assert ab["final_agreement_with_teacher"] > 0.9  # long training imitates the teacher
    assert ab["final_noise_corr_with_teacher"] > 0.7  # by learning its noise direction
    rows = results[1]["feature_learning"]["scarce"]["rows"]
    assert all(r["student_train_error_on_weak_labels"] < 0.02 for r in rows)  # overfits
    assert rows[-1]["student_error"] < rows[0]["student_error"]  # more data: benign
    assert rows[-1]["benign"] and not rows[0]["benign"]


def test_coverage_expansion_and_pseudolabel_correction(results):
    rep = results[1]["coverage"]["report"]
    assert rep["student_accuracy_uncovered"] > 0.5 + 0.2
    assert rep["weak_accuracy_uncovered"] < 0.6  # the weak labeller guesses there
    assert rep["correction_rate"] > 0
    assert rep["student_error_covered"] < rep["weak_error_covered"]


def test_same_seed_same_numbers(tmp_path):
    a = run_simulator("refinement", tmp_path / "a", seed=3, quick=True)
    b = run_simulator("refinement", tmp_path / "b", seed=3, quick=True)
    assert a == b
