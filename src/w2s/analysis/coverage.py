"""Pseudolabel correction and coverage expansion (Lang, Sontag & Vijayaraghavan, NeurIPS 2024).

The weak labeller *covers* the examples where it is confident (set S) and abstains on the
rest (T). A student trained on weak labels beats its teacher through two effects:
*pseudolabel correction* (it is right on covered examples where the weak label is wrong)
and *coverage expansion* (it is accurate on uncovered examples). Both rest on
*expansion*: the teacher's mistakes, and the uncovered points, have neighbourhoods in the
strong model's representation that reach many correctly labelled covered points.

Probabilities are ``(n,)`` (binary, P(class 1)) or ``(n, c)``; gold labels are ``(n,)``
integers. Rates over an empty set are ``nan`` (``None`` in :func:`coverage_report`).
"""

from __future__ import annotations

import math

import numpy as np

from w2s.analysis.misfit import as_proba


def confidence(proba: np.ndarray) -> np.ndarray:
    """Per-example confidence: the largest class probability."""
    return as_proba(proba).max(axis=1)


def coverage_mask(
    weak_proba: np.ndarray, threshold: float | None = None, coverage: float | None = None
) -> np.ndarray:
    """Boolean mask of the examples the weak model covers.

    Give ``threshold`` to cover examples whose confidence is ``>= threshold``, or
    ``coverage`` (a fraction in [0, 1], default 0.5) to cover exactly the
    ``round(coverage * n)`` most confident examples (ties broken by position).
    """
    if threshold is not None and coverage is not None:
        raise ValueError("give threshold or coverage, not both")
    conf = confidence(weak_proba)
    if threshold is not None:
        return conf >= threshold
    coverage = 0.5 if coverage is None else coverage
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"coverage must be in [0, 1], got {coverage}")
    n_cov = int(round(coverage * len(conf)))
    order = np.argsort(-conf, kind="stable")
    mask = np.zeros(len(conf), dtype=bool)
    mask[order[:n_cov]] = True
    return mask


def _rate(hits: np.ndarray) -> float:
    return float(hits.mean()) if hits.size else float("nan")


def _labels(gold: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(gold)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"gold must be 1-D with {n} labels, got shape {y.shape}")
    return y.astype(int)


def _mask(covered: np.ndarray, n: int) -> np.ndarray:
    c = np.asarray(covered, dtype=bool)
    if c.shape != (n,):
        raise ValueError(f"covered must be a boolean mask of length {n}, got shape {c.shape}")
    return c


def pseudolabel_correction(
    gold: np.ndarray, weak_proba: np.ndarray, student_proba: np.ndarray, covered: np.ndarray
) -> dict[str, float]:
    """How the student treats the weak labels on covered examples.

    ``correction_rate``: among covered examples whose weak label is wrong, the fraction the
    student gets right. ``corruption_rate``: among covered examples whose weak label is
    right, the fraction the student gets wrong. Also the weak and student error on the
    covered set and the number of covered weak mistakes.
    """
    weak_pred = as_proba(weak_proba).argmax(axis=1)
    student_pred = as_proba(student_proba).argmax(axis=1)
    n = len(weak_pred)
    y, cov = _labels(gold, n), _mask(covered, n)
    if len(student_pred) != n:
        raise ValueError("weak_proba and student_proba have different lengths")
    weak_wrong = weak_pred != y
    student_right = student_pred == y
    return {
        "correction_rate": _rate(student_right[cov & weak_wrong]),
        "corruption_rate": _rate(~student_right[cov & ~weak_wrong]),
        "weak_error_covered": _rate(weak_wrong[cov]),
        "student_error_covered": _rate(~student_right[cov]),
        "n_covered_weak_wrong": float((cov & weak_wrong).sum()),
    }


def coverage_expansion(
    gold: np.ndarray, student_proba: np.ndarray, covered: np.ndarray
) -> dict[str, float]:
    """Student accuracy on covered and on uncovered examples."""
    pred = as_proba(student_proba).argmax(axis=1)
    n = len(pred)
    right = pred == _labels(gold, n)
    cov = _mask(covered, n)
    return {
        "student_accuracy_covered": _rate(right[cov]),
        "student_accuracy_uncovered": _rate(right[~cov]),
    }


def expansion_estimate(
    features: np.ndarray,
    weak_pred: np.ndarray,
    reference_labels: np.ndarray,
    covered: np.ndarray,
    k: int = 10,
    metric: str = "cosine",
    max_queries: int | None = 2_000,
) -> dict[str, float]:
    """Nearest-neighbour estimate of expansion in the strong model's representation.

    ``reference_labels`` decide which weak labels count as wrong: pass gold for analysis
    (allowed, since this measures the data, not a method); without gold, pass the
    student's predictions, and "wrong" then means "the student disagrees". Points are
    split into *bad* (covered, weak label wrong), *good* (covered, weak label right) and
    *uncovered*. Each point's ``k`` nearest neighbours (itself excluded) are searched among
    all points. For the bad and the uncovered set it returns:

    - ``*_reach``: fraction with at least one good point among its neighbours;
    - ``*_good_neighbour_fraction``: mean fraction of neighbours that are good (compare
      with ``good_base_rate``, its value for random neighbours);
    - ``*_expansion``: ``|good points in the union of their neighbourhoods| / |set|``,
      the ratio in Lang et al.'s expansion condition;
    - ``*_majority_correct``: fraction whose covered neighbours' majority weak label equals
      the reference label (what a kNN student would predict).

    A set larger than ``max_queries`` is represented by a random subset of that size
    (seed 0); Lang et al.'s condition is stated for every large enough subset, so the
    ratios stay meaningful while the cost stays ``O(max_queries * n)``.
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(features, dtype=float)
    wp = np.asarray(weak_pred).astype(int)
    ref = np.asarray(reference_labels).astype(int)
    n = len(x)
    if x.ndim != 2 or wp.shape != (n,) or ref.shape != (n,):
        raise ValueError("features must be (n, d); weak_pred and reference_labels (n,)")
    cov = _mask(covered, n)
    good = cov & (wp == ref)
    bad = cov & (wp != ref)
    out: dict[str, float] = {
        "n_bad": float(bad.sum()),
        "n_uncovered": float((~cov).sum()),
        "good_base_rate": float(good.sum() / max(n - 1, 1)),
    }
    k_eff = min(k, n - 1)
    keys = ("reach", "good_neighbour_fraction", "expansion", "majority_correct")
    if k_eff < 1:
        for name in ("bad", "uncovered"):
            out.update({f"{name}_{key}": float("nan") for key in keys})
        return out
    nn = NearestNeighbors(n_neighbors=k_eff + 1, metric=metric).fit(x)
    n_classes = int(max(wp.max(), ref.max())) + 1
    for name, sel in (("bad", bad), ("uncovered", ~cov)):
        idx = np.flatnonzero(sel)
        if max_queries is not None and idx.size > max_queries:
            idx = np.sort(np.random.default_rng(0).choice(idx, max_queries, replace=False))
        if idx.size == 0:
            out.update({f"{name}_{key}": float("nan") for key in keys})
            continue
        nbrs = nn.kneighbors(x[idx], return_distance=False)
        nbrs = np.array([row[row != i][:k_eff] for row, i in zip(nbrs, idx, strict=True)])
        is_good = good[nbrs]
        votes = np.zeros((len(idx), n_classes))
        for c in range(n_classes):
            votes[:, c] = (cov[nbrs] & (wp[nbrs] == c)).sum(axis=1)
        has_vote = votes.sum(axis=1) > 0
        majority_right = has_vote & (votes.argmax(axis=1) == ref[idx])
        reached = np.unique(nbrs[is_good])
        out[f"{name}_reach"] = float(is_good.any(axis=1).mean())
        out[f"{name}_good_neighbour_fraction"] = float(is_good.mean())
        out[f"{name}_expansion"] = float(len(reached) / len(idx))
        out[f"{name}_majority_correct"] = float(majority_right.mean())
    return out


def coverage_report(
    gold: np.ndarray,
    weak_proba: np.ndarray,
    student_proba: np.ndarray,
    strong_features: np.ndarray | None = None,
    threshold: float | None = None,
    coverage: float | None = None,
    k: int = 10,
) -> dict[str, float | None]:
    """Flat, JSON-serialisable summary of coverage, correction and expansion.

    Covered examples are chosen by :func:`coverage_mask` (``threshold``, else ``coverage``,
    default half). Expansion keys (``expansion_*``) appear only when ``strong_features``
    are given; they use gold as the reference labels and do not depend on the student, so
    across several methods of one run they need computing once. Undefined rates are
    ``None``.
    """
    covered = coverage_mask(weak_proba, threshold=threshold, coverage=coverage)
    conf = confidence(weak_proba)
    weak_pred = as_proba(weak_proba).argmax(axis=1)
    y = _labels(gold, len(weak_pred))
    weak_right = weak_pred == y
    out: dict[str, float] = {
        "coverage_fraction": float(covered.mean()),
        "coverage_threshold": float(conf[covered].min()) if covered.any() else float("nan"),
        "weak_accuracy_covered": _rate(weak_right[covered]),
        "weak_accuracy_uncovered": _rate(weak_right[~covered]),
    }
    out.update(coverage_expansion(y, student_proba, covered))
    out.update(pseudolabel_correction(y, weak_proba, student_proba, covered))
    if strong_features is not None:
        est = expansion_estimate(strong_features, weak_pred, y, covered, k=k)
        out.update({f"expansion_{key}": v for key, v in est.items()})
    return {key: (None if math.isnan(v) else float(v)) for key, v in out.items()}
