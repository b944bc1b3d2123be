"""`guided_search`: weak-to-strong search (Zhou et al. 2024) as a generation method.

The strong model is not trained: its test answers come from chunk-level beam search
(`w2s.models.lm.guided`) scored by the weak model after alignment (the weak supervisor's
own LoRA adapter, tuned on gold of weak_train) against the weak model before it.
"""

from __future__ import annotations

from pydantic import Field

from w2s.errors import W2SError
from w2s.methods.base import register
from w2s.methods.generation import GenerationContext, GenerationMethod, GenerationResult
from w2s.models.lm.guided import LikelihoodRatio, guided_search
from w2s.progress import progress
from w2s.registry import Params
from w2s.seeds import derive_seed


@register
class GuidedSearch(GenerationMethod):
    name = "guided_search"
    description = (
        "beam search over strong-model chunks scored by log p_tuned - log p_untuned of the "
        "weak model (no strong training)"
    )
    uses_weak_models = True
    needs_transformers = True

    class Params(Params):
        beam_width: int = Field(2, ge=1)
        samples: int = Field(3, ge=1)  # chunks sampled per beam and round (K)
        chunk_tokens: int = Field(32, ge=1)  # L
        temperature: float = Field(0.7, ge=0)

    def run(self, ctx: GenerationContext) -> GenerationResult:
        if ctx.weak_aligned is None or ctx.weak_base is None:
            raise W2SError("guided_search needs the tuned weak model: generation.weak_mode=sft")
        scorer = LikelihoodRatio(ctx.weak_aligned, ctx.weak_base)
        p = self.params
        answers, ratios, candidates = [], [], 0
        prompts = ctx.prompts["test"]
        with progress() as bar:
            job = bar.add_task("weak-to-strong search", total=len(prompts))
            for i, prompt in enumerate(prompts):
                answer, diag = guided_search(
                    ctx.strong,
                    scorer,
                    prompt,
                    beam_width=p.beam_width,
                    samples=p.samples,
                    chunk_tokens=p.chunk_tokens,
                    max_new_tokens=ctx.max_new_tokens,
                    temperature=p.temperature,
                    seed=derive_seed(ctx.seed, "guided_search", str(i)),
                )
                answers.append(answer)
                ratios.append(diag["log_ratio"])
                candidates += diag["candidates"]
                bar.advance(job)
        mean_ratio = sum(ratios) / max(len(ratios), 1)
        return GenerationResult(
            {"test": answers},
            None,
            {"mean_log_ratio": mean_ratio, "candidates_scored": candidates},
        )
