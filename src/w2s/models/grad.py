"""`no_grad` and `inference_mode` as decorators that import torch only when called, so
that modules using them load (and a config is checked) without torch's two seconds."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def _lazy(mode: str) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            import torch

            with getattr(torch, mode)():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


no_grad = _lazy("no_grad")
inference_mode = _lazy("inference_mode")
