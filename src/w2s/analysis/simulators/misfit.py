"""Gain vs misfit for regression on fixed representations (Charikar et al., NeurIPS 2024).

Ground truth is linear in the strong representation ``h_s = z`` (``z ~ N(0, I_ds)``):
``y = theta . z`` (realisable; gold labels carry a little noise). Each weak model sees its
own random nonlinear low-dimensional view ``tanh(A z / sqrt(ds)) + noise`` plus ``d_u``
nuisance features independent of ``z``, and is a least-squares fit of gold labels on them
from ``n_train`` examples (few examples: it overfits the nuisance features, an error the
strong class cannot represent). The student is a least-squares fit of the weak
model's predictions on ``h_s``: the projection of ``f_w`` onto the linear class ``V_s``.
Theory: ``err(f_w) - err(f_sw) >= E (f_sw - f_w)^2`` with equality for a subspace, so
across weak models the gain lies on ``y = x``. It also picks a weak model by
``weak error - misfit``, with the weak error measured on the weak model's own held-out
gold data, and compares it with the weak model whose student is truly best.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from w2s.analysis import misfit as m


def _lstsq(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    a = np.column_stack([features, np.ones(len(features))])
    return np.linalg.lstsq(a, target, rcond=None)[0]


def _predict(features: np.ndarray, coef: np.ndarray) -> np.ndarray:
    return features @ coef[:-1] + coef[-1]


def simulate(seed: int = 0, quick: bool = False) -> dict:
    """Fit many weak models and their students; return gains, misfits and the line fit."""
    rng = np.random.default_rng(seed)
    d_s, gold_noise = 16, 0.1
    n_weak_models = 12 if quick else 40
    n_weak_train, n_weak_val = 2_000, 1_000
    n_student, n_test = (20_000, 20_000) if quick else (40_000, 40_000)
    theta = rng.standard_normal(d_s) / np.sqrt(d_s)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        z = rng.standard_normal((n, d_s))
        return z, z @ theta + gold_noise * rng.standard_normal(n)

    z_st, _ = draw(n_student)  # the student never sees these gold labels
    z_te, y_te = draw(n_test)
    rows = []
    for j in range(n_weak_models):
        d_w = int(rng.integers(2, d_s))
        d_u = int(rng.integers(0, 60))
        a = rng.standard_normal((d_w, d_s))
        feat_noise = float(rng.uniform(0.0, 0.5))
        n_train = int(np.exp(rng.uniform(np.log(2 * (d_w + d_u) + 20), np.log(n_weak_train))))

        def view(z: np.ndarray, a: np.ndarray = a, s: float = feat_noise, d_u: int = d_u):
            h = np.tanh(z @ a.T / np.sqrt(d_s)) + s * rng.standard_normal((len(z), len(a)))
            return np.column_stack([h, rng.standard_normal((len(z), d_u))])

        z_tr, y_tr = draw(n_train)
        z_va, y_va = draw(n_weak_val)
        coef_w = _lstsq(view(z_tr), y_tr)
        weak_val_error = m.prediction_loss(y_va, _predict(view(z_va), coef_w), "squared")
        coef_s = _lstsq(z_st, _predict(view(z_st), coef_w))  # student: projection onto V_s
        weak_te = _predict(view(z_te), coef_w)
        student_te = _predict(z_te, coef_s)
        rep = m.misfit_report(y_te, weak_te, student_te, kind="regression")
        rows.append(
            {
                "weak_model": j,
                "d_w": d_w,
                "d_nuisance": d_u,
                "n_train": n_train,
                "feature_noise": feat_noise,
                "weak_val_error": weak_val_error,
                **rep,
            }
        )

    gains = np.array([r["gain_squared"] for r in rows])
    misfits = np.array([r["misfit_squared"] for r in rows])
    fit = m.fit_gain_vs_misfit(gains, misfits)
    selection = m.evaluate_weak_selection(
        [r["weak_val_error"] for r in rows], misfits, [r["student_squared_error"] for r in rows]
    )
    return {
        "weak_models": rows,
        "slope": fit.slope,
        "intercept": fit.intercept,
        "r": fit.r,
        "min_gain_minus_misfit": float((gains - misfits).min()),
        "max_gain_minus_misfit": float((gains - misfits).max()),
        "mean_misfit": float(misfits.mean()),
        "mean_gain": float(gains.mean()),
        "selection": selection,
        "params": {
            "d_s": d_s,
            "gold_noise": gold_noise,
            "n_weak_models": n_weak_models,
            "n_weak_train": n_weak_train,
            "n_student": n_student,
            "n_test": n_test,
            "seed": seed,
        },
    }


def plot(result: dict, path: Path) -> None:
    """Gain against misfit, one point per weak model."""
    rows = result["weak_models"]
    m.plot_gain_vs_misfit(
        [r["gain_squared"] for r in rows],
        [r["misfit_squared"] for r in rows],
        None,
        path,
        title="Regression: gain vs misfit",
    )


def run(path: Path, seed: int = 0, quick: bool = False) -> dict:
    """Simulate, save the plot to ``path`` and return the numbers."""
    result = simulate(seed=seed, quick=quick)
    plot(result, path)
    return result
