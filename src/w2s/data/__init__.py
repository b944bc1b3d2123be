"""Tasks: examples, sources (BIG-bench, files, HF datasets), deterministic splits."""

from w2s.data.registry import ALIASES, load_task
from w2s.data.splits import SPLITS, split_task
from w2s.data.task import Task

__all__ = ["ALIASES", "SPLITS", "Task", "load_task", "split_task"]
