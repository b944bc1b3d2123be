"""W2S methods, one module per family, resolved by name through `METHODS` (classification)
and `GEN_METHODS` (generation)."""

from w2s.methods import gen_baselines, icl_classify, probe_losses, refine  # noqa: F401  (register)
from w2s.methods.base import METHODS, Method, MethodContext, MethodResult, get_method, register
from w2s.methods.generation import (
    GEN_METHODS,
    GenerationContext,
    GenerationMethod,
    GenerationResult,
    get_generation_method,
    register_generation,
)

__all__ = [
    "GEN_METHODS",
    "METHODS",
    "GenerationContext",
    "GenerationMethod",
    "GenerationResult",
    "Method",
    "MethodContext",
    "MethodResult",
    "get_generation_method",
    "get_method",
    "register",
    "register_generation",
]
