"""The refinement family (Somerstep et al., ICLR 2025): the strong model re-answers the
weak-labelled prompts, using the weak answers only to identify the intent, then is
fine-tuned on its own refined answers (or, with `finetune=False`, refines at test time).

- `icl_refine` (Alg. 1): batches of k+1; each prompt is answered greedily with the other
  k weak (prompt, answer) pairs of its batch as in-context demonstrations.
- `infer_respond` (Alg. 2): the strong model states the style it infers from the other k
  pairs ("The used style is: ...") and answers with that sentence as its system prompt.
- `ask_improve` (Alg. 3): the strong model is asked to improve the weak answer.
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import Field

from w2s.methods.base import register
from w2s.methods.generation import GenerationContext, GenerationMethod, GenerationResult
from w2s.models.lm import LanguageModel, Message
from w2s.registry import Params
from w2s.seeds import derive_seed

ICL_INSTRUCTION = "Answer the last question in the same style and format as your earlier answers."
STYLE_QUESTION = (
    "Here are questions and the answers someone gave to them:\n\n{examples}\n\n"
    "Describe the style of these answers (voice, tone, format, length) in one sentence that "
    "starts with 'The used style is:'. Describe only the style, not the facts."
)
STYLE_PREFIX = "The used style is:"
IMPROVE_QUESTION = (
    "Here is a question and an answer someone wrote.\n\nQuestion: {question}\n"
    "Answer: {answer}\n\nImprove the answer: correct anything that is wrong, and keep its "
    "style, voice and format. Reply with the improved answer only."
)


def refinement_batches(n: int, k: int, seed: int = 0) -> list[list[int]]:
    """Indices 0..n-1, shuffled with `seed`, in batches of k+1 (the last may be shorter)."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    return [order[i : i + k + 1] for i in range(0, n, k + 1)]


def demo_indices(n: int, k: int, seed: int = 0) -> list[list[int]]:
    """Each item's demonstrations: the other items of its batch. Items of a short last
    batch borrow from the previous batch, so each gets min(k, n-1); never itself."""
    batches = refinement_batches(n, k, seed)
    out: list[list[int]] = [[] for _ in range(n)]
    for b, batch in enumerate(batches):
        for i in batch:
            demos = [j for j in batch if j != i]
            if len(demos) < k and b > 0:
                demos += batches[b - 1][: k - len(demos)]
            out[i] = demos
    return out


def icl_chat(
    demos: list[tuple[str, str]], prompt: str, instruction: str | None = ICL_INSTRUCTION
) -> list[Message]:
    """Demonstrations as earlier chat turns, then the prompt to answer."""
    chat: list[Message] = [{"role": "system", "content": instruction}] if instruction else []
    for q, a in demos:
        chat += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return [*chat, {"role": "user", "content": prompt}]


def icl_prompts(
    prompts: list[str],
    answers: list[str],
    k: int,
    seed: int = 0,
    instruction: str | None = ICL_INSTRUCTION,
) -> tuple[list[list[Message]], list[list[int]]]:
    """Alg. 1's prompts for every item, and the indices of the demonstrations each holds."""
    demos = demo_indices(len(prompts), k, seed)
    chats = [
        icl_chat([(prompts[j], answers[j]) for j in d], prompts[i], instruction)
        for i, d in enumerate(demos)
    ]
    return chats, demos


def style_question(pairs: list[tuple[str, str]]) -> str:
    examples = "\n\n".join(f"Question: {q}\nAnswer: {a}" for q, a in pairs)
    return STYLE_QUESTION.format(examples=examples)


def extract_style(text: str) -> str:
    """The 'The used style is: ...' sentence from the model's reply (added if missing)."""
    m = re.search(re.escape(STYLE_PREFIX), text, flags=re.IGNORECASE)
    body = text[m.end() :] if m else text
    body = " ".join(body.strip().split("\n")[0].split())[:300] or "plain and concise."
    return f"{STYLE_PREFIX} {body}"


def _changed(new: list[str], old: list[str]) -> float:
    return float(np.mean([a.strip() != b.strip() for a, b in zip(new, old, strict=True)]))


class RefineParams(Params):
    """`finetune`: SFT on the refined answers (else refine at test time); `k`: weak
    demonstrations per prompt (default: the run's `generation.k`)."""

    finetune: bool = True
    k: int | None = Field(None, ge=1, le=64)


class Refinement(GenerationMethod):
    """Refine the weak answers on strong_train, then SFT on them (or refine at test time)."""

    Params = RefineParams

    def k(self, ctx: GenerationContext) -> int:
        return int(self.params.k or ctx.k)

    def refine(self, lm: LanguageModel, ctx: GenerationContext) -> tuple[list[str], dict]:
        """The refined answers on strong_train and diagnostics of the refinement."""
        raise NotImplementedError

    def refine_test(self, lm: LanguageModel, ctx: GenerationContext) -> list[str]:
        raise NotImplementedError

    def run(self, ctx: GenerationContext) -> GenerationResult:
        weak = ctx.weak_answers["strong_train"]
        if not self.params.finetune:
            test = self.refine_test(ctx.strong, ctx)
            return GenerationResult({"test": test}, None, {"finetune": False})
        refined, extra = self.refine(ctx.strong, ctx)
        test, losses = self.answer_after_sft(
            ctx.strong, ctx.prompts["strong_train"], refined, ctx.prompts["test"], ctx
        )
        diag = {"refined_changed": _changed(refined, weak), "train_losses": losses, **extra}
        return GenerationResult({"test": test}, refined, diag)


@register
class ICLRefine(Refinement):
    name = "icl_refine"
    description = "Alg. 1: strong re-answers with k weak demos (leave-one-out), then SFT"

    class Params(RefineParams):
        instruction: str = ICL_INSTRUCTION

    def refine(self, lm, ctx):
        chats, _ = icl_prompts(
            ctx.prompts["strong_train"],
            ctx.weak_answers["strong_train"],
            self.k(ctx),
            ctx.seed,
            self.params.instruction,
        )
        return lm.complete(chats, max_new_tokens=ctx.max_new_tokens), {}

    def refine_test(self, lm, ctx):
        train, weak = ctx.prompts["strong_train"], ctx.weak_answers["strong_train"]
        rng = np.random.default_rng(derive_seed(ctx.seed, "test_demos"))
        k = min(self.k(ctx), len(train))
        chats = [
            icl_chat(
                [(train[j], weak[j]) for j in rng.choice(len(train), k, replace=False)],
                p,
                self.params.instruction,
            )
            for p in ctx.prompts["test"]
        ]
        return lm.complete(chats, max_new_tokens=ctx.max_new_tokens)


@register
class InferRespond(Refinement):
    name = "infer_respond"
    description = "Alg. 2: strong states the style it infers from k weak demos, answers in it"

    def styles(self, lm, pairs_per_item: list[list[tuple[str, str]]]) -> list[str]:
        replies = lm.complete([style_question(p) for p in pairs_per_item], max_new_tokens=64)
        return [extract_style(r) for r in replies]

    def respond(self, lm, ctx, prompts: list[str], styles: list[str]) -> list[str]:
        chats = [
            [{"role": "system", "content": s}, {"role": "user", "content": p}]
            for p, s in zip(prompts, styles, strict=True)
        ]
        return lm.complete(chats, max_new_tokens=ctx.max_new_tokens)

    def refine(self, lm, ctx):
        train, weak = ctx.prompts["strong_train"], ctx.weak_answers["strong_train"]
        demos = demo_indices(len(train), self.k(ctx), ctx.seed)
        styles = self.styles(lm, [[(train[j], weak[j]) for j in d] for d in demos])
        return self.respond(lm, ctx, train, styles), {"styles_sample": styles[:3]}

    def refine_test(self, lm, ctx):
        train, weak = ctx.prompts["strong_train"], ctx.weak_answers["strong_train"]
        batches = refinement_batches(len(train), self.k(ctx), ctx.seed)[:4]
        styles = self.styles(lm, [[(train[j], weak[j]) for j in b] for b in batches])
        test = ctx.prompts["test"]
        return self.respond(lm, ctx, test, [styles[i % len(styles)] for i in range(len(test))])


@register
class AskImprove(Refinement):
    name = "ask_improve"
    description = "Alg. 3: strong is asked to improve each weak answer, then SFT"

    def improve(self, lm, ctx, prompts: list[str], answers: list[str]) -> list[str]:
        asks = [
            IMPROVE_QUESTION.format(question=q, answer=a)
            for q, a in zip(prompts, answers, strict=True)
        ]
        return lm.complete(asks, max_new_tokens=ctx.max_new_tokens)

    def refine(self, lm, ctx):
        train = ctx.prompts["strong_train"]
        return self.improve(lm, ctx, train, ctx.weak_answers["strong_train"]), {}

    def refine_test(self, lm, ctx):
        return self.improve(lm, ctx, ctx.prompts["test"], ctx.weak_answers["test"])
