"""Misfit between student and weak teacher, and the gain it predicts.

Charikar, Pabbaraju & Shiragur (NeurIPS 2024): if the student ``f_sw`` is the projection
of the weak predictor ``f_w`` onto a convex strong class that contains the truth, then

    err(f_sw) <= err(f_w) - d(f_sw, f_w)

so the *gain* ``err(f_w) - err(f_sw)`` is at least the *misfit* ``d(f_sw, f_w)``, which
needs no gold labels. For the squared loss ``d`` is ``E (f_sw - f_w)^2``; with a linear
student on fixed features the bound is an equality in the population. The same argument
holds for any Bregman divergence ``D`` (extended by Mulgund & Pabbaraju 2025): if
``f_sw = argmin_{f in C} E D(f, f_w)`` then, for gold ``g`` in ``C``,
``D(g, f_w) >= D(g, f_sw) + D(f_sw, f_w)`` (the Bregman Pythagorean inequality). For
cross-entropy, ``D`` is the KL divergence, ``err(f) = E KL(g || f)`` (cross-entropy to
gold minus a constant) and the misfit is therefore ``E KL(student || weak)``: the student
comes *first*. A student trained with ordinary cross-entropy to soft weak labels
minimises ``E KL(weak || f)`` instead and is not covered (for a class convex in logit
space it satisfies the dual ``KL(w || g) >= KL(w || f_sw) + KL(f_sw || g)``, which does not
bound cross-entropy to gold); for it the KL misfit is a diagnostic, not a bound.

All functions take plain arrays. Classification probabilities are ``(n,)`` (binary,
probability of class 1) or ``(n, c)``; gold labels are ``(n,)`` integers, or ``(n, c)``
class probabilities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

EPS = 1e-12

Kind = Literal["classification", "regression"]
Loss = Literal["cross_entropy", "brier", "squared", "zero_one"]


def as_proba(proba: np.ndarray) -> np.ndarray:
    """Return probabilities as an ``(n, c)`` array; a 1-D array is P(class 1) of a binary task."""
    p = np.asarray(proba, dtype=float)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be 1-D or 2-D, got shape {p.shape}")
    if np.any(p < -1e-9) or np.any(p > 1 + 1e-9):
        raise ValueError("probabilities must lie in [0, 1]")
    return p


def _gold_proba(gold: np.ndarray, n_classes: int) -> np.ndarray:
    g = np.asarray(gold)
    if g.ndim == 2:
        return as_proba(g)
    if g.ndim != 1:
        raise ValueError(f"gold must be 1-D labels or 2-D probabilities, got shape {g.shape}")
    labels = g.astype(int)
    if not np.array_equal(labels, g) or labels.min(initial=0) < 0 or labels.max() >= n_classes:
        raise ValueError(f"gold labels must be integers in [0, {n_classes})")
    return np.eye(n_classes)[labels]


def _check_same_length(*arrays: np.ndarray) -> None:
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"arrays have different numbers of examples: {sorted(lengths)}")
    if 0 in lengths:
        raise ValueError("arrays are empty")


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-example ``KL(p || q)`` in nats; ``q`` is floored at 1e-12 so the result is finite."""
    from scipy.special import rel_entr

    p, q = as_proba(p), as_proba(q)
    return rel_entr(p, np.maximum(q, EPS)).sum(axis=1)


def misfit(
    student_proba: np.ndarray, weak_proba: np.ndarray, kind: Kind = "classification"
) -> float:
    """Mean divergence of the student's predictions from the weak model's (no gold needed).

    ``kind="regression"``: ``mean (student - weak)^2`` (summed over columns of 2-D input;
    applies to probability vectors too, pairing with the Brier score).
    ``kind="classification"``: ``mean KL(student || weak)``. This is the direction of the
    Bregman Pythagorean inequality: a student that minimises ``E KL(f || weak)`` over a
    class convex in probability space and containing the truth satisfies
    ``CE(weak) - CE(student) >= E KL(student || weak)``. A student trained with ordinary
    (forward) cross-entropy to soft weak labels minimises ``E KL(weak || f)`` instead; for
    it the inequality is not guaranteed and the misfit is a diagnostic, not a bound.
    """
    if kind == "classification":
        s, w = as_proba(student_proba), as_proba(weak_proba)
        _check_same_length(s, w)
        if s.shape != w.shape:
            raise ValueError(f"shapes differ: student {s.shape}, weak {w.shape}")
        return float(kl_divergence(s, w).mean())
    if kind == "regression":
        s, w = np.asarray(student_proba, float), np.asarray(weak_proba, float)
        if s.shape != w.shape:
            raise ValueError(f"shapes differ: student {s.shape}, weak {w.shape}")
        _check_same_length(s, w)
        return float(((s - w) ** 2).reshape(len(s), -1).sum(axis=1).mean())
    raise ValueError(f"kind must be 'classification' or 'regression', got {kind!r}")


def prediction_loss(gold: np.ndarray, pred: np.ndarray, loss: Loss = "cross_entropy") -> float:
    """Mean loss of predictions against gold.

    ``cross_entropy``: ``-sum_c g_c log p_c`` (p clipped at 1e-12); ``brier``: squared
    distance between the probability vector and the one-hot (or soft) gold; ``squared``:
    ``(pred - gold)^2`` on raw values (regression); ``zero_one``: argmax error rate.
    """
    if loss == "squared":
        y, f = np.asarray(gold, float), np.asarray(pred, float)
        if y.shape != f.shape:
            raise ValueError(f"shapes differ: gold {y.shape}, pred {f.shape}")
        _check_same_length(y, f)
        return float(((f - y) ** 2).reshape(len(y), -1).sum(axis=1).mean())
    p = as_proba(pred)
    g = _gold_proba(gold, p.shape[1])
    _check_same_length(g, p)
    if loss == "cross_entropy":
        return float(-(g * np.log(np.clip(p, EPS, None))).sum(axis=1).mean())
    if loss == "brier":
        return float(((p - g) ** 2).sum(axis=1).mean())
    if loss == "zero_one":
        return float((p.argmax(axis=1) != g.argmax(axis=1)).mean())
    raise ValueError(f"loss must be one of cross_entropy, brier, squared, zero_one; got {loss!r}")


def realised_gain(
    gold: np.ndarray,
    weak_proba: np.ndarray,
    student_proba: np.ndarray,
    loss: Loss = "cross_entropy",
) -> float:
    """Weak error minus student error on gold, in ``loss`` (positive: the student is better).

    With ``loss="zero_one"`` this is the accuracy gain. Pair ``cross_entropy`` with the KL
    misfit, and ``brier``/``squared`` with the squared misfit.
    """
    return prediction_loss(gold, weak_proba, loss) - prediction_loss(gold, student_proba, loss)


def misfit_report(
    gold: np.ndarray,
    weak_proba: np.ndarray,
    student_proba: np.ndarray,
    kind: Kind = "classification",
) -> dict[str, float]:
    """Misfit, realised gain and ``gain - misfit`` in each matching loss, as a flat dict.

    Classification: KL misfit with cross-entropy gain, squared misfit (on probability
    vectors) with Brier gain, and the accuracy gain. Regression: squared misfit and
    squared-error gain. ``gain - misfit >= 0`` is what the theory predicts for a student
    that is the projection of the weak model (see module docstring).
    """
    if kind == "regression":
        m = misfit(student_proba, weak_proba, "regression")
        we = prediction_loss(gold, weak_proba, "squared")
        se = prediction_loss(gold, student_proba, "squared")
        return {
            "misfit_squared": m,
            "weak_squared_error": we,
            "student_squared_error": se,
            "gain_squared": we - se,
            "gain_minus_misfit_squared": we - se - m,
        }
    if kind != "classification":
        raise ValueError(f"kind must be 'classification' or 'regression', got {kind!r}")
    w, s = as_proba(weak_proba), as_proba(student_proba)
    out: dict[str, float] = {
        "misfit_kl": misfit(s, w, "classification"),
        "misfit_squared": misfit(s, w, "regression"),
    }
    for loss in ("cross_entropy", "brier", "zero_one"):
        out[f"weak_{loss}"] = prediction_loss(gold, w, loss)
        out[f"student_{loss}"] = prediction_loss(gold, s, loss)
    out["gain_cross_entropy"] = out["weak_cross_entropy"] - out["student_cross_entropy"]
    out["gain_brier"] = out["weak_brier"] - out["student_brier"]
    out["gain_accuracy"] = out["weak_zero_one"] - out["student_zero_one"]
    out["gain_minus_misfit_kl"] = out["gain_cross_entropy"] - out["misfit_kl"]
    out["gain_minus_misfit_squared"] = out["gain_brier"] - out["misfit_squared"]
    return out


def select_weak_by_misfit(weak_errors: np.ndarray, misfits: np.ndarray) -> int:
    """Index of the weak model whose student is predicted best: ``argmin(weak_error - misfit)``.

    ``weak_errors`` need gold only on the weak models' own held-out data (e.g. their
    weak-train validation split); ``misfits`` need none. Both must be in matching losses
    (squared with squared misfit, cross-entropy with KL misfit).
    """
    e, m = np.asarray(weak_errors, float), np.asarray(misfits, float)
    if e.shape != m.shape or e.ndim != 1 or len(e) == 0:
        raise ValueError("weak_errors and misfits must be 1-D arrays of the same non-zero length")
    return int(np.argmin(e - m))


def evaluate_weak_selection(
    weak_errors: np.ndarray, misfits: np.ndarray, student_errors: np.ndarray
) -> dict[str, float]:
    """Compare the misfit-based choice of weak model with the truly best one.

    ``student_errors`` are the students' gold test errors (an analysis quantity). Also
    reports the naive choice, the weak model with the lowest error. ``regret`` is the
    chosen student's error minus the best student's error.
    """
    se = np.asarray(student_errors, float)
    if se.shape != np.asarray(misfits).shape:
        raise ValueError("student_errors must have one entry per weak model")
    chosen = select_weak_by_misfit(weak_errors, misfits)
    naive = int(np.argmin(np.asarray(weak_errors, float)))
    best = int(np.argmin(se))
    return {
        "chosen": chosen,
        "best": best,
        "lowest_weak_error": naive,
        "chosen_student_error": float(se[chosen]),
        "best_student_error": float(se[best]),
        "regret": float(se[chosen] - se[best]),
        "regret_lowest_weak_error": float(se[naive] - se[best]),
    }


class GainFit(NamedTuple):
    """Least-squares line ``gain = slope * misfit + intercept`` and Pearson ``r``."""

    slope: float
    intercept: float
    r: float


def fit_gain_vs_misfit(gains: np.ndarray, misfits: np.ndarray) -> GainFit:
    """Fit gain against misfit across several weak models (theory: slope ~1, intercept ~0)."""
    g, m = np.asarray(gains, float), np.asarray(misfits, float)
    if g.shape != m.shape or g.ndim != 1:
        raise ValueError("gains and misfits must be 1-D arrays of the same length")
    if len(g) < 2 or np.ptp(m) == 0:
        return GainFit(float("nan"), float("nan"), float("nan"))
    slope, intercept = np.polyfit(m, g, 1)
    r = float(np.corrcoef(m, g)[0, 1]) if np.ptp(g) > 0 else float("nan")
    return GainFit(float(slope), float(intercept), r)


def plot_gain_vs_misfit(
    gains: np.ndarray,
    misfits: np.ndarray,
    labels: list[str] | None,
    path: str | Path,
    title: str = "gain vs misfit",
) -> Path:
    """Scatter gain against misfit with the ``y = x`` line and the fitted line; save a PNG."""
    from matplotlib.figure import Figure

    g, m = np.asarray(gains, float), np.asarray(misfits, float)
    fit = fit_gain_vs_misfit(g, m)
    fig = Figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    ax.scatter(m, g, s=22, zorder=3)
    if labels is not None:
        for x, y, label in zip(m, g, labels, strict=True):
            ax.annotate(str(label), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lo, hi = min(m.min(), g.min(), 0.0), max(m.max(), g.max())
    xs = np.linspace(lo, hi, 50)
    ax.plot(xs, xs, "k--", lw=1, label="gain = misfit")
    if np.isfinite(fit.slope):
        ax.plot(
            xs,
            fit.slope * xs + fit.intercept,
            "C1-",
            lw=1.2,
            label=f"fit: {fit.slope:.2f} x + {fit.intercept:.3f}",
        )
    ax.set_xlabel("misfit d(student, weak)")
    ax.set_ylabel("gain: err(weak) - err(student)")
    ax.set_title(f"{title} (r = {fit.r:.3f})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
