"""Numeric precision of model inference: names, and what `auto` resolves to.

`auto` is bfloat16 on a CUDA device and float32 on CPU. Most CPUs (this project's
2-core machines included: AVX2, no AVX512-BF16/AMX) emulate bf16 matrix products, so
bf16 is slower there, not faster: MiniLM-L6 embeds 161 sentences/s in float32 and 26 in
bf16 (`benchmarks/results/features.json`). float32 is also the precision in which
batched and one-by-one computations agree (docs/design.md).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator

if TYPE_CHECKING:
    import torch

DtypeName = Literal["auto", "bfloat16", "float32"]


def _cuda_available() -> bool:
    """`torch.cuda.is_available()`, without importing torch (two seconds) when the
    installed torch is a CPU-only build: one without a CUDA or ROCm library."""
    if "torch" not in sys.modules:
        spec = importlib.util.find_spec("torch")
        lib = Path(spec.origin).parent / "lib" if spec and spec.origin else None
        gpu_libs = ("libtorch_cuda*", "libtorch_hip*")
        if lib is not None and lib.is_dir() and not any(any(lib.glob(g)) for g in gpu_libs):
            return False
    import torch

    return torch.cuda.is_available()


def resolve_dtype(name: str) -> str:
    """The concrete dtype for `name`; `auto` depends only on whether CUDA is present."""
    if name == "auto":
        return "bfloat16" if _cuda_available() else "float32"
    return name


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}[
        resolve_dtype(name)
    ]


# a config field: accepts `auto`, stores the resolved name (so saved configs are concrete)
Dtype = Annotated[DtypeName, AfterValidator(resolve_dtype)]
