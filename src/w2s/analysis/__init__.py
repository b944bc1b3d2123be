"""Analyses over plain arrays: metrics, PGR with bootstrap CIs, misfit, coverage, simulators."""

from w2s.analysis.metrics import (
    accuracy,
    agreement,
    auroc,
    classification_metrics,
    ece,
    score_agreement,
)
from w2s.analysis.pgr import bootstrap_difference, bootstrap_pgr, bootstrap_pgr_scores, pgr

__all__ = [
    "accuracy",
    "agreement",
    "auroc",
    "bootstrap_difference",
    "bootstrap_pgr",
    "bootstrap_pgr_scores",
    "classification_metrics",
    "ece",
    "pgr",
    "score_agreement",
]
