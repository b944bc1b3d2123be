"""The method contract and its registry.

A method takes the weak supervision (soft labels on the strong model's training and
validation data) and the strong model's view of the data, and returns the trained
student's predictions. New methods are one small module: subclass `Method`, decorate
with `@register`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from w2s.errors import UnknownNameError


@dataclass
class MethodContext:
    """Everything a W2S method may use. Gold labels of strong_train/val are absent on purpose."""

    n_classes: int
    x_train: np.ndarray
    weak_train: np.ndarray
    x_val: np.ndarray
    weak_val: np.ndarray
    x_test: np.ndarray
    texts: dict[str, list[str]] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    strong_model: str = ""
    probe: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass
class MethodResult:
    """The student's class probabilities on test (and on strong_train, for analyses)."""

    test_proba: np.ndarray
    train_proba: np.ndarray | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)


class Method(ABC):
    """A W2S method; parameters come from the config (`methods: [{name: ..., <param>: ...}]`)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    kind: ClassVar[str] = "classification"
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        self.params = merge_params(self.defaults, params)

    @abstractmethod
    def run(self, ctx: MethodContext) -> MethodResult:
        """Train the student on the weak supervision in `ctx`."""


def merge_params(defaults: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A method's parameters: its `defaults` overridden by `params`; unknown names are errors."""
    unknown = set(params) - set(defaults)
    if unknown:
        raise TypeError(f"unknown parameter(s) {sorted(unknown)}; allowed: {sorted(defaults)}")
    return {**defaults, **params}


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator adding a method to the registry under `cls.name`."""
    METHODS[cls.name] = cls
    return cls


def get_method(name: str, **params: Any) -> Method:
    """Instantiate a registered method; unknown names list the registry."""
    if name not in METHODS:
        raise UnknownNameError(f"unknown method '{name}' (methods: {', '.join(sorted(METHODS))})")
    try:
        return METHODS[name](**params)
    except TypeError as err:
        raise UnknownNameError(f"method '{name}': {err}") from None
