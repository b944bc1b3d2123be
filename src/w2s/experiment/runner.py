"""Run an experiment: resolve the task and its spec, pick the protocol of its kind."""

from __future__ import annotations

from typing import Any

from w2s.data.registry import resolve_task
from w2s.experiment import classification, generation  # noqa: F401  (register protocols)
from w2s.experiment.config import ExperimentConfig
from w2s.experiment.protocol import PROTOCOLS, Protocol


def make_protocol(cfg: ExperimentConfig) -> Protocol:
    """The protocol for `cfg`'s task, validated (config, methods, output folder)."""
    task, spec = resolve_task(cfg.task)
    return PROTOCOLS.get(task.kind)(cfg, task, spec)


def run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    """Run the experiment of `cfg`; write its run directory; return metrics.json's dict."""
    return make_protocol(cfg).run()
