"""The experiment layer: config, the protocol runner, run directories, reports."""

from w2s.experiment.config import ExperimentConfig, build_config
from w2s.experiment.runner import run_experiment

__all__ = ["ExperimentConfig", "build_config", "run_experiment"]
