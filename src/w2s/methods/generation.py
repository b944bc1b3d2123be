"""The generation-method contract and its registry.

A generation method gets the prompts, the weak supervisor's answers and the strong
language model, and returns the strong student's answers on the test prompts. Reference
methods (the weak supervisor and the ceilings) also see gold answers and the task's
hidden instruction; W2S methods never do (the runner leaves those fields empty).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from w2s.errors import UnknownNameError
from w2s.methods.base import merge_params
from w2s.models.lm import LanguageModel


@dataclass
class GenerationContext:
    """What a generation method may use; `gold`, `instruction` and `weak` are set only
    for reference methods."""

    prompts: dict[str, list[str]]
    weak_answers: dict[str, list[str]]
    strong: LanguageModel
    weak: LanguageModel | None = None
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


class GenerationMethod(ABC):
    """A generation W2S method; parameters (see `defaults`) come from the config."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    kind: ClassVar[str] = "generation"
    reference: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        self.params = merge_params(self.defaults, params)

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


GEN_METHODS: dict[str, type[GenerationMethod]] = {}


def register_generation(cls: type[GenerationMethod]) -> type[GenerationMethod]:
    """Class decorator adding a generation method to the registry under `cls.name`."""
    GEN_METHODS[cls.name] = cls
    return cls


def get_generation_method(name: str, **params: Any) -> GenerationMethod:
    """Instantiate a registered generation method; unknown names list the registry."""
    if name not in GEN_METHODS:
        raise UnknownNameError(
            f"unknown generation method '{name}' (methods: {', '.join(sorted(GEN_METHODS))})"
        )
    try:
        return GEN_METHODS[name](**params)
    except TypeError as err:
        raise UnknownNameError(f"method '{name}': {err}") from None
