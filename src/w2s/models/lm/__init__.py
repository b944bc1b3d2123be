"""Language models: one contract (`LanguageModel`), three backends (transformers,
llama.cpp in-process, OpenAI-compatible HTTP), and `auto`, which picks llama.cpp for
GGUF models when it is installed and transformers otherwise."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from w2s.errors import UnknownNameError
from w2s.models.lm.base import GenParams, LanguageModel, Message, Prompt, to_messages

BACKENDS = ("auto", "transformers", "llamacpp", "openai")
AUTO_ENV = "W2S_AUTO_BACKEND"


def auto_backend(ref: str, needs_transformers: bool = False) -> str:
    """The backend `auto` runs `ref` on: `llamacpp` when llama-cpp-python is installed,
    `ref` is a GGUF (a zoo model shipped as one, or a `.gguf` file), no CUDA device is
    visible to torch and nothing asks for transformers; else `transformers`, the
    reference. `W2S_AUTO_BACKEND=transformers|llamacpp` replaces the detection."""
    forced = os.environ.get(AUTO_ENV, "").strip()
    if forced:
        if forced not in ("transformers", "llamacpp"):
            raise UnknownNameError(f"{AUTO_ENV} must be transformers or llamacpp, not '{forced}'")
        return "transformers" if needs_transformers else forced
    if needs_transformers or importlib.util.find_spec("llama_cpp") is None:
        return "transformers"
    from w2s.models.lm.hf import ADAPTER_META, _read_adapter_meta
    from w2s.zoo import ZOO

    if (Path(ref).expanduser() / ADAPTER_META).exists():  # an adapter: its base decides
        ref = str(_read_adapter_meta(Path(ref).expanduser()).get("base", ""))
    gguf = ZOO[ref].fmt == "gguf" if ref in ZOO else ref.endswith(".gguf")
    if not gguf:
        return "transformers"
    import torch

    return "transformers" if torch.cuda.is_available() else "llamacpp"


def make_lm(ref: str, backend: str = "transformers", **kw: Any) -> LanguageModel:
    """A language model by reference: `transformers` takes a zoo name, hub id or folder
    (or an adapter folder); `llamacpp` a zoo name with a GGUF, a `.gguf` file or an
    adapter folder; `openai` the served model name plus `base_url`; `auto` see
    `auto_backend`."""
    if backend == "auto":
        backend = auto_backend(ref)
    if backend == "transformers":
        from w2s.models.lm.hf import ADAPTER_META, HFLanguageModel

        if (Path(ref).expanduser() / ADAPTER_META).exists():
            return HFLanguageModel.from_adapter(Path(ref).expanduser(), **kw)
        return HFLanguageModel(ref, **kw)
    if backend == "llamacpp":
        from w2s.models.lm.hf import ADAPTER_META
        from w2s.models.lm.llamacpp import LlamaCppLanguageModel

        if (Path(ref).expanduser() / ADAPTER_META).exists():
            return LlamaCppLanguageModel.from_adapter(Path(ref).expanduser(), **kw)
        return LlamaCppLanguageModel(ref, **kw)
    if backend == "openai":
        from w2s.models.lm.openai_http import OpenAILanguageModel

        if not kw.get("base_url"):
            raise UnknownNameError(
                "the openai backend needs a base_url (e.g. http://127.0.0.1:8000/v1)"
            )
        return OpenAILanguageModel(ref, **kw)
    raise UnknownNameError(f"unknown LM backend '{backend}' (backends: {', '.join(BACKENDS)})")


__all__ = [
    "AUTO_ENV",
    "BACKENDS",
    "auto_backend",
    "GenParams",
    "LanguageModel",
    "Message",
    "Prompt",
    "make_lm",
    "to_messages",
]
