"""W2S methods, one module per family, resolved by name through `METHODS`."""

from w2s.methods import probe_losses  # noqa: F401  (registers the probe methods)
from w2s.methods.base import METHODS, Method, MethodContext, MethodResult, get_method, register

__all__ = ["METHODS", "Method", "MethodContext", "MethodResult", "get_method", "register"]
