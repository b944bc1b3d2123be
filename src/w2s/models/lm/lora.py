"""LoRA SFT hyper-parameters, declared once (used by the config and the backends)."""

from __future__ import annotations

from pydantic import Field

from w2s.registry import Params


class LoraParams(Params):
    """LoRA SFT of a language model (loss on the completion tokens only)."""

    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    epochs: int = Field(2, gt=0)
    lr: float = Field(5e-4, gt=0)
    batch_size: int = Field(4, gt=0)
    # examples per forward pass (gradient accumulation; None: the whole batch): the same
    # update in less memory (a float32 Qwen2.5-1.5B at batch 4 x 768 tokens needs > 24 GB)
    micro_batch_size: int | None = Field(None, gt=0)
    max_length: int = Field(768, gt=8)
