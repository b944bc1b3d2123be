"""Classification metrics over plain arrays: accuracy, AUROC, ECE, agreement."""

from __future__ import annotations

import numpy as np


def accuracy(gold: np.ndarray, proba: np.ndarray) -> float:
    return float((np.asarray(proba).argmax(1) == np.asarray(gold)).mean())


def auroc(gold: np.ndarray, proba: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Binary AUROC on p(class 1); macro one-vs-rest for K > 2. NaN if a class is absent."""
    from sklearn.metrics import roc_auc_score  # lazily: sklearn adds a second to start-up

    gold, proba = np.asarray(gold), np.asarray(proba)
    try:
        if proba.shape[1] == 2:
            return float(roc_auc_score(gold, proba[:, 1], sample_weight=sample_weight))
        return float(
            roc_auc_score(
                gold,
                proba,
                multi_class="ovr",
                average="macro",
                labels=list(range(proba.shape[1])),
                sample_weight=sample_weight,
            )
        )
    except ValueError:
        return float("nan")


def _binary_auroc_weighted(
    positive: np.ndarray, score: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Binary AUROC under each row of `weights` (B, n) at once; ties count one half."""
    uniq, inv = np.unique(score, return_inverse=True)
    onehot = np.zeros((len(score), len(uniq)))
    onehot[np.arange(len(score)), inv] = 1.0
    pos = weights @ (onehot * positive[:, None])  # (B, U) weighted positives per score value
    neg = weights @ (onehot * ~positive[:, None])
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        return (pos * (below + 0.5 * neg)).sum(1) / (pos.sum(1) * neg.sum(1))


def auroc_resampled(gold: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC (binary, or macro one-vs-rest) under each row of example weights (B, n):
    a vectorised bootstrap of `auroc`. NaN where a class is absent from a resample."""
    gold, proba = np.asarray(gold), np.asarray(proba)
    weights = np.asarray(weights, dtype=float)
    if proba.shape[1] == 2:
        return _binary_auroc_weighted(gold == 1, proba[:, 1], weights)
    per_class = [
        _binary_auroc_weighted(gold == k, proba[:, k], weights) for k in range(proba.shape[1])
    ]
    return np.mean(per_class, axis=0)


def ece(gold: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error of the top-class confidence, equal-width bins."""
    proba = np.asarray(proba)
    conf = proba.max(1)
    correct = proba.argmax(1) == np.asarray(gold)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def agreement(proba_a: np.ndarray, proba_b: np.ndarray) -> float:
    """Fraction of examples where two predictors' top classes agree."""
    return float((np.asarray(proba_a).argmax(1) == np.asarray(proba_b).argmax(1)).mean())


def classification_metrics(gold: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {"accuracy": accuracy(gold, proba), "auroc": auroc(gold, proba), "ece": ece(gold, proba)}


def score_agreement(scores: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How well a graded score (e.g. an LLM judge's) tracks a reference score (e.g. a
    deterministic grader's) over the same answers: Spearman's rank correlation, and the
    AUROC of `scores` for telling answers with `reference > 0` from those without (NaN
    when one side is empty). Pairs with a NaN on either side are left out; `n` counts the rest.
    """
    from scipy.stats import spearmanr

    s, r = np.asarray(scores, dtype=float), np.asarray(reference, dtype=float)
    keep = ~(np.isnan(s) | np.isnan(r))
    s, r = s[keep], r[keep]
    out = {"n": int(keep.sum()), "spearman": float("nan"), "auroc": float("nan")}
    if len(s) > 1 and np.ptp(s) > 0 and np.ptp(r) > 0:
        out["spearman"] = float(spearmanr(s, r).statistic)
    positive = (r > 0).astype(int)
    if 0 < positive.sum() < len(positive):
        out["auroc"] = auroc(positive, np.stack([1 - s, s], axis=1))
    return out
