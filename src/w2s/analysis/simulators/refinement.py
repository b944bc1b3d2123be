"""Refinement vs naive fine-tuning in a latent-concept mixture (Somerstep et al., ICLR 2025).

The strong model knows a mixture of concepts, ``y | x ~ sum_k a_k N(b_k . x, s^2)`` with
orthonormal ``b_k``; the target is one of them, ``b*``. The weak labeller is biased:
``y_w = b_w . x + noise`` with ``b_w = (1 - lam) b* + lam b_j`` (a blend with a wrong
concept). Its excess risk ``|b_w - b*|^2`` is the *weak bias*.

- Naive fine-tuning: least squares (ridge 1.0) on the weak labels. It converges to ``b_w``, so its
  excess risk plateaus at the weak bias however many examples it sees.
- Refinement: the strong model uses ``k`` weak-labelled examples only to identify the
  concept (posterior over the mixture components given the demonstrations) and predicts
  with the posterior mean ``sum_k pi_k b_k``. Its excess risk decays exponentially in
  ``k`` as long as ``b_w`` is closer to ``b*`` than to any other concept.

Excess risk of a linear predictor ``b`` is ``E (b . x - b* . x)^2 = |b - b*|^2``
(``x ~ N(0, I)``), computed exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import logsumexp


def _concepts(rng: np.random.Generator, n_concepts: int, dim: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((dim, n_concepts)))
    return q.T  # (n_concepts, dim), orthonormal rows


def simulate(seed: int = 0, quick: bool = False) -> dict:
    """Excess risk of naive fine-tuning and of refinement against the number of examples k."""
    rng = np.random.default_rng(seed)
    dim, n_concepts = 10, 5
    s, weak_noise, lam, ridge = 1.0, 0.5, 0.3, 1.0
    ks = np.arange(1, 17 if quick else 31)
    n_trials = 150 if quick else 1000
    n_plateau = 5_000 if quick else 50_000

    refine_err = np.zeros((n_trials, len(ks)))
    naive_err = np.zeros((n_trials, len(ks)))
    map_wrong = np.zeros((n_trials, len(ks)))
    plateau = np.zeros(min(n_trials, 20))
    weak_bias = 2 * lam**2  # |(1-lam) b* + lam b_j - b*|^2 for orthonormal b's
    for t in range(n_trials):
        b = _concepts(rng, n_concepts, dim)
        target, other = rng.choice(n_concepts, size=2, replace=False)
        b_star, b_w = b[target], (1 - lam) * b[target] + lam * b[other]
        x = rng.standard_normal((ks[-1], dim))
        y_w = x @ b_w + weak_noise * rng.standard_normal(ks[-1])
        # log-likelihood of each concept for each example, cumulated over the first k
        ll = -((y_w[:, None] - x @ b.T) ** 2) / (2 * s**2)
        cum = np.cumsum(ll, axis=0)[ks - 1]  # (len(ks), n_concepts); uniform prior a_k
        post = np.exp(cum - logsumexp(cum, axis=1, keepdims=True))
        refine_err[t] = ((post @ b - b_star) ** 2).sum(axis=1)
        map_wrong[t] = post.argmax(axis=1) != target
        for i, k in enumerate(ks):
            b_hat = np.linalg.solve(x[:k].T @ x[:k] + ridge * np.eye(dim), x[:k].T @ y_w[:k])
            naive_err[t, i] = ((b_hat - b_star) ** 2).sum()
        if t < len(plateau):
            xp = rng.standard_normal((n_plateau, dim))
            yp = xp @ b_w + weak_noise * rng.standard_normal(n_plateau)
            plateau[t] = ((np.linalg.lstsq(xp, yp, rcond=None)[0] - b_star) ** 2).sum()

    refine_mean, naive_mean = refine_err.mean(axis=0), naive_err.mean(axis=0)
    ok = refine_mean > 1e-12
    slope, intercept = np.polyfit(ks[ok], np.log(refine_mean[ok]), 1)
    return {
        "ks": ks.tolist(),
        "refine_error": refine_mean.tolist(),
        "naive_error": naive_mean.tolist(),
        "refine_concept_error_rate": map_wrong.mean(axis=0).tolist(),
        "weak_bias": float(weak_bias),
        "naive_plateau": float(plateau.mean()),
        "naive_plateau_n": n_plateau,
        "refine_log_error_slope": float(slope),
        "refine_log_error_intercept": float(intercept),
        "params": {
            "dim": dim,
            "n_concepts": n_concepts,
            "s": s,
            "weak_noise": weak_noise,
            "lam": lam,
            "ridge": ridge,
            "n_trials": n_trials,
            "seed": seed,
        },
    }


def plot(result: dict, path: Path) -> None:
    """Excess risk against k, log scale, with the weak bias as a reference line."""
    from matplotlib.figure import Figure

    ks = np.asarray(result["ks"])
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    ax.semilogy(ks, result["naive_error"], "o-", ms=3, label="naive fine-tuning (ridge LS)")
    ax.semilogy(ks, result["refine_error"], "s-", ms=3, label="refinement (concept posterior)")
    fit = np.exp(result["refine_log_error_intercept"] + result["refine_log_error_slope"] * ks)
    ax.semilogy(
        ks,
        fit,
        ":",
        color="C1",
        label=f"exp fit, slope {result['refine_log_error_slope']:.3f}/example",
    )
    ax.axhline(
        result["weak_bias"],
        color="k",
        ls="--",
        lw=1,
        label=f"weak bias |b_w - b*|^2; naive with n={result['naive_plateau_n']}: "
        f"{result['naive_plateau']:.3f}",
    )
    ax.set_xlabel("k weak-labelled examples")
    ax.set_ylabel("excess risk |b - b*|^2")
    ax.set_title("Refinement vs naive fine-tuning")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(path: Path, seed: int = 0, quick: bool = False) -> dict:
    """Simulate, save the plot to ``path`` and return the numbers."""
    result = simulate(seed=seed, quick=quick)
    plot(result, path)
    return result
