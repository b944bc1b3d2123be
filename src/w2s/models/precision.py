"""Numeric precision of model inference: names, and what `auto` resolves to.

`auto` is bfloat16 on a CUDA device and float32 on CPU. Most CPUs (this project's
2-core machines included: AVX2, no AVX512-BF16/AMX) emulate bf16 matrix products, so
bf16 is slower there, not faster: MiniLM-L6 embeds 161 sentences/s in float32 and 26 in
bf16 (`benchmarks/results/features.json`). float32 is also the precision in which
batched and one-by-one computations agree (docs/design.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import AfterValidator

DtypeName = Literal["auto", "bfloat16", "float32"]


def resolve_dtype(name: str) -> str:
    """The concrete dtype for `name`; `auto` depends only on whether CUDA is present."""
    if name == "auto":
        return "bfloat16" if torch.cuda.is_available() else "float32"
    return name


def torch_dtype(name: str) -> torch.dtype:
    return {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}[
        resolve_dtype(name)
    ]


# a config field: accepts `auto`, stores the resolved name (so saved configs are concrete)
Dtype = Annotated[DtypeName, AfterValidator(resolve_dtype)]
