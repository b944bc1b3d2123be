"""Pseudolabel correction and coverage expansion on a 2-D toy (Lang et al., NeurIPS 2024).

Strong representation ``z = (z1, z2)``: the class sets ``z1`` (``N(+-1.5, 1)``), ``z2`` is
a nuisance "domain" coordinate, uniform on [-3, 3]. The weak labeller is a rule that only
fires in one domain: for ``z2 > 0`` it scores ``z1`` plus its own noise (independent of
``z``, so its mistakes are unlearnable for the student); for ``z2 <= 0`` it has nothing to
go on and returns near-0.5 probabilities. It covers its most confident half.

The student is a logistic regression on ``z`` trained on the covered examples' hard weak
labels only. It is accurate on the uncovered domain (coverage expansion: the class
boundary in ``z`` is the same there) and disagrees with many covered weak mistakes
(pseudolabel correction). The numbers come from :func:`w2s.analysis.coverage.coverage_report`.

The k-NN expansion estimate explains the correction (a covered mistake's neighbours are
mostly correctly labelled covered points) but not the expansion: uncovered points lie in
the other domain, whose neighbours are uncovered too. The linear student extrapolates
anyway; its hypothesis class, not a neighbourhood, carries the boundary across.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import expit

from w2s.analysis.coverage import coverage_mask, coverage_report, expansion_estimate


def _simulate(seed: int, quick: bool) -> tuple[dict, dict[str, np.ndarray]]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    n = 1_000 if quick else 4_000
    y = rng.integers(0, 2, n)
    z = np.column_stack([rng.normal(np.where(y == 1, 1.5, -1.5), 1.0), rng.uniform(-3, 3, n)])
    fires = z[:, 1] > 0
    score = np.where(fires, 2.0 * (z[:, 0] + rng.normal(0, 1.2, n)), rng.normal(0, 0.3, n))
    weak_proba = expit(score)
    weak_pred = (weak_proba > 0.5).astype(int)
    covered = coverage_mask(weak_proba, coverage=0.5)

    student = LogisticRegression().fit(z[covered], weak_pred[covered])
    student_proba = student.predict_proba(z)[:, 1]
    student_pred = (student_proba > 0.5).astype(int)
    result = {
        "report": coverage_report(y, weak_proba, student_proba, coverage=0.5),
        # Euclidean neighbourhoods suit this 2-D toy (the report's default is cosine)
        "expansion": expansion_estimate(z, weak_pred, y, covered, k=10, metric="euclidean"),
        "weak_accuracy": float((weak_pred == y).mean()),
        "student_accuracy": float((student_pred == y).mean()),
        "fraction_covered_in_firing_domain": float(fires[covered].mean()),
        "student_coef": student.coef_[0].tolist() + student.intercept_.tolist(),
        "params": {"n": n, "seed": seed, "coverage": 0.5},
    }
    arrays = {
        "z": z,
        "y": y,
        "covered": covered,
        "weak_pred": weak_pred,
        "student_pred": student_pred,
    }
    return result, arrays


def simulate(seed: int = 0, quick: bool = False) -> dict:
    """Weak labeller, covered set and student on the toy; return the coverage numbers."""
    return _simulate(seed, quick)[0]


def plot(result: dict, arrays: dict[str, np.ndarray], path: Path) -> None:
    """Two panels: weak labels (abstentions grey, mistakes ringed) and student predictions."""
    from matplotlib.figure import Figure

    z, y, cov = arrays["z"], arrays["y"], arrays["covered"]
    rep = result["report"]
    fig = Figure(figsize=(9, 4.2))
    panels = (
        (arrays["weak_pred"], cov, "weak labels (grey: not covered)"),
        (arrays["student_pred"], np.ones(len(y), bool), "student, trained on covered"),
    )
    for i, (pred, shown, title) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.scatter(*z[~shown].T, s=4, c="0.8")
        ax.scatter(*z[shown].T, s=4, c=np.where(pred[shown] == 1, "C1", "C0"))
        wrong = shown & (pred != y)
        ax.scatter(
            *z[wrong].T, s=14, facecolors="none", edgecolors="k", lw=0.5, label="wrong vs gold"
        )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("z1 (class)")
        ax.set_ylabel("z2 (domain; the weak rule fires for z2 > 0)")
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(
        f"student accuracy on uncovered {rep['student_accuracy_uncovered']:.2f} "
        f"(weak {rep['weak_accuracy_uncovered']:.2f}); covered weak mistakes corrected: "
        f"{rep['correction_rate']:.2f}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(path: Path, seed: int = 0, quick: bool = False) -> dict:
    """Simulate, save the plot to ``path`` and return the numbers."""
    result, arrays = _simulate(seed, quick)
    plot(result, arrays, path)
    return result
