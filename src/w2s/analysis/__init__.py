"""Analyses over plain arrays: metrics, PGR with bootstrap CIs, misfit, coverage, simulators."""

from w2s.analysis.metrics import accuracy, agreement, auroc, classification_metrics, ece
from w2s.analysis.pgr import bootstrap_pgr, pgr

__all__ = [
    "accuracy",
    "agreement",
    "auroc",
    "bootstrap_pgr",
    "classification_metrics",
    "ece",
    "pgr",
]
