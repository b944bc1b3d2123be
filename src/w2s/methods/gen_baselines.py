"""Generation baselines and references: the unaltered strong model, naive SFT on weak
answers, the weak supervisor (prompted or SFT on gold), and the ceilings (strong SFT on
gold, or the strong model given the task's instruction)."""

from __future__ import annotations

from typing import Literal

from w2s.errors import W2SError
from w2s.methods.base import register
from w2s.methods.generation import GenerationContext, GenerationMethod, GenerationResult
from w2s.registry import Params


@register
class Unaltered(GenerationMethod):
    name = "unaltered"
    description = "the strong model as is, zero-shot"

    def run(self, ctx: GenerationContext) -> GenerationResult:
        return GenerationResult({"test": self.answer(ctx.strong, ctx.prompts["test"], ctx)})


@register
class NaiveSFT(GenerationMethod):
    name = "naive_sft"
    description = "strong SFT (LoRA) on the weak answers"

    def run(self, ctx: GenerationContext) -> GenerationResult:
        weak = ctx.weak_answers["strong_train"]
        test, losses = self.answer_after_sft(
            ctx.strong, ctx.prompts["strong_train"], weak, ctx.prompts["test"], ctx
        )
        return GenerationResult({"test": test}, weak, {"train_losses": losses})


def _need_gold(ctx: GenerationContext, split: str, who: str) -> list[str]:
    gold = ctx.gold.get(split)
    if not gold or not all(g.strip() for g in gold):
        raise W2SError(
            f"{who} needs gold answers (a `solution` or `target` column); this task has none: "
            "use generation.weak_mode=prompted / generation.ceiling=prompted"
        )
    return gold


@register
class Weak(GenerationMethod):
    name = "weak"
    description = "the weak supervisor: prompted with the task's instruction, or SFT on gold"
    reference = True

    class Params(Params):
        mode: Literal["prompted", "sft"] = "prompted"

    def run(self, ctx: GenerationContext) -> GenerationResult:
        if ctx.weak is None:
            raise W2SError("the weak supervisor needs a weak language model")
        splits = ["strong_train", "test"]
        prompts = [p for s in splits for p in ctx.prompts[s]]
        diag: dict = {"mode": self.params.mode}
        if self.params.mode == "sft":
            gold = _need_gold(ctx, "weak_train", "weak_mode=sft")
            out, diag["train_losses"] = self.answer_after_sft(
                ctx.weak, ctx.prompts["weak_train"], gold, prompts, ctx
            )
        else:
            out = self.answer(ctx.weak, prompts, ctx, system=ctx.instruction)
        n = len(ctx.prompts["strong_train"])
        return GenerationResult({"strong_train": out[:n], "test": out[n:]}, None, diag)


@register
class GoldSFT(GenerationMethod):
    name = "gold_sft"
    description = "ceiling: strong SFT (LoRA) on gold answers of strong_train"
    reference = True

    def run(self, ctx: GenerationContext) -> GenerationResult:
        gold = _need_gold(ctx, "strong_train", "gold_sft")
        test, losses = self.answer_after_sft(
            ctx.strong, ctx.prompts["strong_train"], gold, ctx.prompts["test"], ctx
        )
        return GenerationResult({"test": test}, gold, {"train_losses": losses})


@register
class StrongPrompted(GenerationMethod):
    name = "strong_prompted"
    description = "ceiling: the strong model told the task's hidden instruction"
    reference = True

    def run(self, ctx: GenerationContext) -> GenerationResult:
        test = self.answer(ctx.strong, ctx.prompts["test"], ctx, system=ctx.instruction)
        return GenerationResult({"test": test})
