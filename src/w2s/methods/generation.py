"""The generation-method contract (the `Method` contract for generation tasks).

A generation method gets the prompts, the weak supervisor's answers and the strong
language model, and returns the strong student's answers on the test prompts. Reference
methods (the weak supervisor and the ceilings) also see gold answers and the task's
hidden instruction; W2S methods never do (the runner leaves those fields empty).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from w2s.methods.base import Method
from w2s.models.lm import LanguageModel


@dataclass
class GenerationContext:
    """What a generation method may use; `gold`, `instruction` and `weak` are set only
    for reference methods; `weak_base` and `weak_aligned` (the weak model before and
    after alignment, i.e. the weak supervisor's own model) only for methods that declare
    `uses_weak_models` (ConG), and only when the weak supervisor is tuned (`sft`)."""

    prompts: dict[str, list[str]]
    weak_answers: dict[str, list[str]]
    strong: LanguageModel
    weak: LanguageModel | None = None
    weak_base: LanguageModel | None = None
    weak_aligned: LanguageModel | None = None
    gold: dict[str, list[str]] = field(default_factory=dict)
    instruction: str | None = None
    max_new_tokens: int = 256
    k: int = 4
    lora: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass
class GenerationResult:
    """The student's answers per split (always `test`), the answers it was tuned on."""

    answers: dict[str, list[str]]
    train_targets: list[str] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)


class GenerationMethod(Method):
    """A method for generation tasks: `run(GenerationContext) -> GenerationResult`."""

    kind: ClassVar[str] = "generation"
    uses_weak_models: ClassVar[bool] = False  # gets the weak model before/after alignment
    # decodes through transformers internals (contrastive logits, merged weights): a
    # `backend: auto` run then stays on transformers
    needs_transformers: ClassVar[bool] = False

    @abstractmethod
    def run(self, ctx: GenerationContext) -> GenerationResult:
        """Produce the student's answers."""

    def answer(self, lm: LanguageModel, prompts: list[str], ctx: GenerationContext, **kw):
        """Greedy answers of `lm` to `prompts` with the run's token budget."""
        return lm.complete(prompts, max_new_tokens=ctx.max_new_tokens, **kw)

    def answer_after_sft(
        self,
        lm: LanguageModel,
        train_prompts: list[str],
        targets: list[str],
        prompts: list[str],
        ctx: GenerationContext,
    ) -> tuple[list[str], list[float]]:
        """Answers to `prompts` of `lm` LoRA-tuned on (train prompt, target) pairs, and
        the tuning's losses; the tuned model is closed afterwards."""
        tuned = lm.sft(list(zip(train_prompts, targets, strict=True)), **ctx.lora)
        try:
            answers = self.answer(tuned, prompts, ctx)
        finally:
            tuned.close()
        return answers, getattr(tuned, "adapter_meta", {}).get("train_losses", [])
