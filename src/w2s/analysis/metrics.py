"""Classification metrics over plain arrays: accuracy, AUROC, ECE, agreement."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def accuracy(gold: np.ndarray, proba: np.ndarray) -> float:
    return float((np.asarray(proba).argmax(1) == np.asarray(gold)).mean())


def auroc(gold: np.ndarray, proba: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Binary AUROC on p(class 1); macro one-vs-rest for K > 2. NaN if a class is absent."""
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
