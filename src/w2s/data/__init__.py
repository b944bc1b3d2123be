"""Tasks: examples, sources (BIG-bench, files, HF datasets), deduplication, splits."""

from w2s.data.dedup import deduplicate
from w2s.data.registry import ALIASES, load_task
from w2s.data.splits import SPLITS, split_task
from w2s.data.task import Task

__all__ = ["ALIASES", "SPLITS", "Task", "deduplicate", "load_task", "split_task"]
