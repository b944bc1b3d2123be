"""The experiment layer: config, one protocol per task kind, run directories, reports."""

from w2s.experiment.config import ExperimentConfig, build_config
from w2s.experiment.protocol import Protocol
from w2s.experiment.runner import make_protocol, run_experiment

__all__ = ["ExperimentConfig", "Protocol", "build_config", "make_protocol", "run_experiment"]
