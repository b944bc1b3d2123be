"""Tasks: examples, sources (BIG-bench, files, HF datasets), declared specs, splits."""

from w2s.data.registry import TASKS, load_task, resolve_task
from w2s.data.specs import TaskSpec
from w2s.data.splits import SPLITS, split_task
from w2s.data.task import Task

__all__ = ["SPLITS", "TASKS", "Task", "TaskSpec", "load_task", "resolve_task", "split_task"]
