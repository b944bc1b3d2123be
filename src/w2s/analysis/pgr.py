"""Performance gap recovered (PGR) and its paired bootstrap confidence interval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from w2s.analysis.metrics import auroc, auroc_resampled


def pgr(weak: float, ceiling: float, student: float) -> float:
    """(student - weak) / (ceiling - weak); NaN when there is no gap."""
    gap = ceiling - weak
    return float((student - weak) / gap) if gap != 0 else float("nan")


def _summarise(point: list[float], boot: list[np.ndarray], ci: float) -> dict:
    """Point PGR, percentile CI over resamples with a non-zero gap, and the rate of
    resamples where the ceiling beats the floor. `point`/`boot`: weak, ceiling, student."""
    gap = boot[1] - boot[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (boot[2] - boot[0]) / gap
    return {
        "pgr": pgr(*point),
        "ci": _percentile_ci(ratios[np.isfinite(ratios)], ci),
        "gap_positive_rate": float((gap > 0).mean()),
    }


def _percentile_ci(values: np.ndarray, ci: float) -> list[float]:
    """The central `ci` percentile interval of bootstrap values (NaNs when there are none)."""
    if not len(values):
        return [float("nan")] * 2
    alpha = (1 - ci) / 2
    return [float(v) for v in np.quantile(values, [alpha, 1 - alpha])]


def _resample_counts(
    n: int, n_resamples: int, seed: int, strata: Sequence[int] | None = None
) -> np.ndarray:
    """(B, n) multiplicities of each test example in each bootstrap resample. `strata`:
    sizes of consecutive blocks of the n examples (e.g. the test sets of several seeds),
    each resampled on its own, so every resample keeps each block's size."""
    sizes = [n] if strata is None else [int(k) for k in strata]
    if sum(sizes) != n or any(k < 0 for k in sizes):
        raise ValueError(f"strata sizes {sizes} do not add up to the {n} examples")
    rng = np.random.default_rng(seed)
    blocks = [rng.multinomial(k, np.full(k, 1.0 / k), size=n_resamples) for k in sizes if k]
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((n_resamples, 0), dtype=int)


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
    point, boot = _scored(gold, [weak, ceiling, student], metric, n_resamples, seed)
    return _summarise(point, boot, ci)


def _scored(
    gold: np.ndarray, probas: list[np.ndarray], metric: str, n_resamples: int, seed: int
) -> tuple[list[float], list[np.ndarray]]:
    """Each predictor's `metric` on the test set and on the same bootstrap resamples."""
    gold = np.asarray(gold)
    counts = _resample_counts(len(gold), n_resamples, seed)
    if metric == "accuracy":
        hits = [(np.asarray(p).argmax(1) == gold).astype(float) for p in probas]
        return [float(h.mean()) for h in hits], [counts @ h / len(gold) for h in hits]
    if metric == "auroc":
        return [auroc(gold, p) for p in probas], [auroc_resampled(gold, p, counts) for p in probas]
    raise ValueError(f"unknown metric '{metric}'")


def bootstrap_pgr_scores(
    weak: np.ndarray,
    ceiling: np.ndarray,
    student: np.ndarray,
    n_resamples: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    strata: Sequence[int] | None = None,
) -> dict[str, float | list[float]]:
    """PGR on a per-example score (correct 0/1, a judge's 1-10, ...) averaged over test
    examples, with a paired bootstrap CI; NaN scores (ungraded answers) are left out of
    each mean. `strata`: see `_resample_counts` (several seeds' test sets pooled). Same
    return keys as `bootstrap_pgr`."""
    arrays = [np.asarray(a, dtype=float) for a in (weak, ceiling, student)]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("weak, ceiling and student scores must have the same length")
    counts = _resample_counts(n, n_resamples, seed, strata)
    point = [float(_finite_means(a, np.ones((1, n)))[0]) for a in arrays]
    boot = [_finite_means(a, counts) for a in arrays]
    return _summarise(point, boot, ci)


def _finite_means(a: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of the finite entries of `a` under each row of resample multiplicities."""
    ok = np.isfinite(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (counts @ np.where(ok, a, 0.0)) / (counts @ ok.astype(float))


def bootstrap_mean(
    scores: np.ndarray,
    n_resamples: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    strata: Sequence[int] | None = None,
) -> dict[str, float | list[float]]:
    """Mean of per-example scores (correct 0/1, a grader's score; NaN = ungraded, left
    out) with a percentile bootstrap CI over examples (`strata`: see `_resample_counts`)."""
    a = np.asarray(scores, dtype=float)
    if a.ndim != 1 or not a.size:
        raise ValueError("scores must be a non-empty 1-D array")
    point = _finite_means(a, np.ones((1, a.size)))[0]
    boot = _finite_means(a, _resample_counts(a.size, n_resamples, seed, strata))
    return {"mean": float(point), "ci": _percentile_ci(boot[np.isfinite(boot)], ci)}


def bootstrap_difference(
    a: np.ndarray,
    b: np.ndarray,
    n_resamples: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    strata: Sequence[int] | None = None,
) -> dict[str, float | int | list[float]]:
    """Mean of `a - b` over examples both score (paired, e.g. two methods on one test set)
    with a percentile bootstrap CI, and on how many examples `a` is better or worse.
    `strata`: see `_resample_counts` (several seeds' test sets pooled)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired scores must have the same length")
    both = np.isfinite(a) & np.isfinite(b)
    d = (a - b)[both]
    if strata is not None:  # each block keeps the examples both score
        edges = np.cumsum([0, *strata])
        if edges[-1] != a.size:
            raise ValueError(f"strata sizes {list(strata)} do not add up to the {a.size} examples")
        strata = [int(both[lo:hi].sum()) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    boot = _finite_means(d, _resample_counts(d.size, n_resamples, seed, strata)) if d.size else d
    return {
        "diff": float(d.mean()) if d.size else float("nan"),
        "ci": _percentile_ci(boot, ci),
        "better": int((d > 0).sum()),
        "worse": int((d < 0).sum()),
    }


def bootstrap_metric_difference(
    gold: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    metric: str = "accuracy",
    n_resamples: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, float | list[float]]:
    """metric(a) - metric(b) for two predictors' class probabilities on the same test
    examples, with a paired percentile bootstrap CI (both scored on each resample) and
    the fraction of resamples where `a` is better."""
    point, boot = _scored(gold, [a, b], metric, n_resamples, seed)
    diffs = boot[0] - boot[1]
    finite = diffs[np.isfinite(diffs)]
    return {
        "diff": float(point[0] - point[1]),
        "ci": _percentile_ci(finite, ci),
        "better_rate": float((finite > 0).mean()) if finite.size else float("nan"),
    }
