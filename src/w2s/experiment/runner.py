"""Run an experiment: resolve the task and its spec, pick the protocol of its kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from w2s.data.registry import resolve_task
from w2s.experiment import classification, generation  # noqa: F401  (register protocols)
from w2s.experiment.config import ExperimentConfig
from w2s.experiment.protocol import PROTOCOLS, Protocol


def make_protocol(cfg: ExperimentConfig, shared_stages: Path | None = None) -> Protocol:
    """The protocol for `cfg`'s task, validated (config, methods, output folder); with
    `shared_stages`, its stages live in that store, shared with other runs."""
    task, spec = resolve_task(cfg.task)
    protocol = PROTOCOLS.get(task.kind)(cfg, task, spec)
    if shared_stages is not None:
        protocol.share_stages(shared_stages)
    return protocol


def run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    """Run the experiment of `cfg`; write its run directory; return metrics.json's dict."""
    return make_protocol(cfg).run()
