"""w2s: weak-to-strong generalization experiments, methods and analyses.

Layers (data flows down once): `w2s.data` (tasks, splits) -> `w2s.zoo` (weights) ->
`w2s.models` (encoders, heads, losses) -> `w2s.methods` (W2S methods) ->
`w2s.analysis` (metrics, PGR) -> `w2s.experiment` (config, runner, reports) -> `w2s.cli`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ExperimentConfig": ("w2s.experiment", "ExperimentConfig"),
    "run_experiment": ("w2s.experiment", "run_experiment"),
    "build_config": ("w2s.experiment", "build_config"),
    "load_task": ("w2s.data", "load_task"),
    "split_task": ("w2s.data", "split_task"),
    "resolve_model": ("w2s.zoo", "resolve_model"),
    "W2SError": ("w2s.errors", "W2SError"),
}


def __getattr__(name: str) -> Any:
    """Import public names lazily so `import w2s` stays fast."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'w2s' has no attribute {name!r}")


__all__ = list(_LAZY)
