"""What models do: encode texts (cached), train heads on features, language models.
Names are imported lazily, so light submodules (e.g. `w2s.models.lm.lora`) load no torch."""

from __future__ import annotations

from typing import Any

_LAZY = {
    "CausalLMEncoder": "w2s.models.encoders",
    "Encoder": "w2s.models.encoders",
    "SentenceEncoder": "w2s.models.encoders",
    "StaticEmbeddingEncoder": "w2s.models.light_encoders",
    "E5EngineEncoder": "w2s.models.light_encoders",
    "make_encoder": "w2s.models.encoders",
    "FeatureStore": "w2s.models.features",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'w2s.models' has no attribute {name!r}")


__all__ = list(_LAZY)
