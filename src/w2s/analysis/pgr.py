"""Performance gap recovered (PGR) and its paired bootstrap confidence interval."""

from __future__ import annotations

import numpy as np

from w2s.analysis.metrics import auroc, auroc_resampled


def pgr(weak: float, ceiling: float, student: float) -> float:
    """(student - weak) / (ceiling - weak); NaN when there is no gap."""
    gap = ceiling - weak
    return float((student - weak) / gap) if gap != 0 else float("nan")


def _resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(B, n) multiplicities of each test example in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)


def bootstrap_pgr(
    gold: np.ndarray,
    weak: np.ndarray,
    ceiling: np.ndarray,
    student: np.ndarray,
    metric: str = "accuracy",
    n_resamples: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, float | list[float]]:
    """PGR of `student` with a paired bootstrap CI over test examples.

    The three predictors are scored on the same resamples (paired), so the interval
    reflects the noise of the ratio itself. Inputs are class probabilities (n, K).
    Returns point estimate, the percentile interval, and the resampled gap's sign rate.
    """
    gold = np.asarray(gold)
    counts = _resample_counts(len(gold), n_resamples, seed)
    if metric == "accuracy":
        hits = [(np.asarray(p).argmax(1) == gold).astype(float) for p in (weak, ceiling, student)]
        point = [h.mean() for h in hits]
        boot = [counts @ h / len(gold) for h in hits]
    elif metric == "auroc":
        point = [auroc(gold, p) for p in (weak, ceiling, student)]
        boot = [auroc_resampled(gold, p, counts) for p in (weak, ceiling, student)]
    else:
        raise ValueError(f"unknown metric '{metric}'")
    gap = boot[1] - boot[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (boot[2] - boot[0]) / gap
    ratios = ratios[np.isfinite(ratios)]
    alpha = (1 - ci) / 2
    lo, hi = (
        np.quantile(ratios, [alpha, 1 - alpha]).tolist()
        if len(ratios)
        else [float("nan"), float("nan")]
    )
    return {
        "pgr": pgr(*point),
        "ci": [float(lo), float(hi)],
        "gap_positive_rate": float((gap > 0).mean()),
    }
