"""Contrastive-decoding methods for generation W2S: ConG and EpiCoDe.

- `cong` (Jiang et al., Contrastive Weak-to-Strong Generalization): the weak model after
  alignment (the weak supervisor: LoRA SFT on gold, `weak_mode=sft`) is decoded
  contrastively against itself before alignment (the base weak model); those samples,
  not the plain weak answers, are the strong model's SFT data. Preference optimisation
  after SFT (the paper's second stage) is not implemented.
- `cong_plain`: the same pipeline with beta = 0, i.e. SFT on the aligned weak model's
  plain samples at the same temperature (at temperature 0 these are the weak answers,
  naive SFT's data).
- `epicode` (Tao et al.): the strong model fine-tuned on the weak answers (naive SFT's
  adapter) and an inferior fine-tune on a fraction of them; the weights are extrapolated,
  theta_ep = theta_ft + a·(theta_ft − theta_inf) (merged weights, see
  `w2s.models.lm.extrapolate`), and theta_ep is decoded contrastively against theta_ft.
  No extra training beyond the two fine-tunes.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from w2s.errors import W2SError
from w2s.methods.base import register
from w2s.methods.generation import GenerationContext, GenerationMethod, GenerationResult
from w2s.registry import Params


class _ConGBase(GenerationMethod):
    uses_weak_models: ClassVar[bool] = True
    needs_transformers: ClassVar[bool] = True

    def contrast(self) -> float:
        """beta of the contrastive decoding (0: plain decoding)."""
        return 0.0

    def run(self, ctx: GenerationContext) -> GenerationResult:
        if ctx.weak_base is None or ctx.weak_aligned is None:
            raise W2SError(
                f"{self.name} needs the weak model before and after alignment: use "
                "generation.weak_mode=sft (the weak supervisor tuned on gold)"
            )
        prompts = ctx.prompts["strong_train"]
        beta = self.contrast()
        from w2s.models.lm.contrastive import Contrastive

        cd = Contrastive(ctx.weak_base, self.params.alpha, beta) if beta > 0 else None
        try:
            targets = [
                g[0]
                for g in ctx.weak_aligned.generate(
                    prompts,
                    max_new_tokens=ctx.max_new_tokens,
                    temperature=self.params.temperature,
                    seed=ctx.seed,
                    contrastive=cd,
                )
            ]
        finally:
            ctx.weak_aligned.close()
        weak = ctx.weak_answers["strong_train"]
        test, losses = self.answer_after_sft(ctx.strong, prompts, targets, ctx.prompts["test"], ctx)
        same = sum(t.strip() == w.strip() for t, w in zip(targets, weak, strict=True))
        diag = {"train_losses": losses, "targets_same_as_weak": same / max(len(weak), 1)}
        return GenerationResult({"test": test}, targets, diag)


@register
class ConG(_ConGBase):
    name = "cong"
    description = (
        "strong SFT on the aligned weak model's samples decoded contrastively against the "
        "unaligned weak model (ConG)"
    )

    class Params(Params):
        alpha: float = Field(0.1, gt=0, le=1)  # plausibility: p_aligned >= alpha * max
        beta: float = Field(0.5, ge=0)  # contrast strength
        temperature: float = Field(0.0, ge=0)  # 0: greedy

    def contrast(self) -> float:
        return self.params.beta


@register
class ConGPlain(_ConGBase):
    name = "cong_plain"
    description = "cong's foil: strong SFT on the aligned weak model's plain samples (beta = 0)"

    class Params(Params):
        alpha: float = Field(0.1, gt=0, le=1)  # unused (beta = 0); kept to share configs
        temperature: float = Field(0.0, ge=0)


@register
class EpiCoDe(GenerationMethod):
    name = "epicode"
    needs_transformers: ClassVar[bool] = True
    description = (
        "strong SFT on weak answers, extrapolated away from a fewer-data fine-tune, decoded "
        "contrasting the extrapolated model with the fine-tune (EpiCoDe)"
    )

    class Params(Params):
        a: float = Field(0.5, ge=0)  # extrapolation: theta_ft + a (theta_ft - theta_inf)
        inferior_fraction: float = Field(0.5, gt=0, lt=1)  # the inferior's share of the data
        alpha: float = Field(0.1, gt=0, le=1)
        beta: float = Field(0.5, ge=0)

    def run(self, ctx: GenerationContext) -> GenerationResult:
        from w2s.models.lm.extrapolate import ExtrapolatedLM

        p = self.params
        weak = ctx.weak_answers["strong_train"]
        pairs = list(zip(ctx.prompts["strong_train"], weak, strict=True))
        n_inf = max(1, round(len(pairs) * p.inferior_fraction))
        ft = ctx.strong.sft(pairs, **ctx.lora)  # naive_sft's adapter (content-addressed)
        inferior = ctx.strong.sft(pairs[:n_inf], **ctx.lora)
        ep = ExtrapolatedLM(ft, inferior, p.a)
        from w2s.models.lm.contrastive import Contrastive

        cd = Contrastive(ft, p.alpha, p.beta) if p.beta > 0 else None
        try:
            test = self.answer(ep, ctx.prompts["test"], ctx, contrastive=cd)
        finally:
            ep.close()
            ft.close()
        diag = {
            "train_losses": ft.adapter_meta.get("train_losses", []),
            "inferior_train_losses": inferior.adapter_meta.get("train_losses", []),
            "n_inferior": n_inf,
        }
        return GenerationResult({"test": test}, list(weak), diag)
