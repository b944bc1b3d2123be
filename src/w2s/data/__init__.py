"""Tasks: examples, sources (BIG-bench, files, HF datasets), declared specs,
deduplication, deterministic splits."""

from w2s.data.dedup import deduplicate
from w2s.data.registry import TASKS, load_task, resolve_task
from w2s.data.specs import TaskSpec
from w2s.data.splits import SPLITS, split_task
from w2s.data.task import Task

__all__ = [
    "SPLITS",
    "TASKS",
    "Task",
    "TaskSpec",
    "deduplicate",
    "load_task",
    "resolve_task",
    "split_task",
]
