"""The `LanguageModel` contract: batched generation, completion log-probs, SFT.

A prompt is a user message (str) or a chat (list of `{"role", "content"}` messages).
Backends render chats with the model's chat template where it has one, and as a plain
`Question: ... Answer:` transcript where it has none. Every generation and score goes
through an on-disk cache keyed by (model key, request), so reruns are free.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from w2s.errors import BackendError, DataError
from w2s.models.lm.cache import LMCache, PartialWrites, request_key

Message = dict[str, str]
Prompt = str | list[Message]
Done = Callable[[int, list[str]], None]  # (chat index, its raw texts), as each finishes
PLAIN_STOP = "\nQuestion:"


@dataclass(frozen=True)
class GenParams:
    """Decoding parameters; `seed` matters only when sampling (temperature > 0)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int = 0
    contrastive: Any = None  # a `Contrastive` (w2s.models.lm.contrastive) or None

    def key(self) -> list:
        seed = self.seed if self.temperature > 0 else None
        key = [self.max_new_tokens, round(self.temperature, 6), self.n, list(self.stop), seed]
        return key + ([self.contrastive.key()] if self.contrastive is not None else [])


def to_messages(prompt: Prompt, system: str | None = None) -> list[Message]:
    """A prompt as a chat; `system` is prepended unless the chat already has one."""
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = [{"role": m["role"], "content": m["content"]} for m in prompt]
    if system and not (messages and messages[0]["role"] == "system"):
        messages = [{"role": "system", "content": system}, *messages]
    return messages


def render_plain(messages: list[Message]) -> str:
    """A chat as a plain completion prompt for models without a chat template."""
    parts = []
    for m in messages:
        text = m["content"].strip()
        if m["role"] == "system":
            parts.append(text + "\n\n")
        elif m["role"] == "user":
            parts.append(f"Question: {text}\nAnswer:")
        else:
            parts.append(f" {text}\n\n")
    return "".join(parts)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if s and i != -1:
            cut = min(cut, i)
    return text[:cut]


def _check_prompts(prompts: Sequence[Prompt]) -> None:
    if isinstance(prompts, str | dict):
        raise DataError("generate() takes a list of prompts, not a single prompt")
    for i, p in enumerate(prompts):
        messages = to_messages(p)
        if not messages or not any(m["content"].strip() for m in messages):
            raise DataError(f"prompt {i} is empty")


class LanguageModel(ABC):
    """Generate, score and fine-tune a causal LM; results cached on disk."""

    chat: bool = True
    supports_contrastive: bool = False
    # bumped when a backend changes how it computes log-probs (old cached values then
    # stop matching: a run's numbers never depend on what the cache held)
    logprob_version: int = 0
    # a long generation stores its finished chats at most this often while it runs
    cache_every_s: float = 30.0

    def __init__(self, cache: bool = True) -> None:
        self._cache = LMCache(self.key) if cache else None

    @property
    @abstractmethod
    def key(self) -> str:
        """Identity of this model's outputs: backend, model, revision, adapter."""

    @property
    def name(self) -> str:
        return self.key

    def render(self, messages: list[Message]) -> str:
        """The text the model is conditioned on (plain rendering by default)."""
        return render_plain(messages)

    def stop_strings(self, stop: Sequence[str] = ()) -> tuple[str, ...]:
        return tuple(stop) + (() if self.chat else (PLAIN_STOP,))

    def generate(
        self,
        prompts: Sequence[Prompt],
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        n: int = 1,
        stop: Sequence[str] | None = None,
        system: str | None = None,
        seed: int = 0,
        contrastive: Any = None,
    ) -> list[list[str]]:
        """`n` completions per prompt (greedy when temperature is 0), in prompt order.

        `contrastive` (a `Contrastive` or a dict {amateur, alpha, beta}) decodes
        contrastively against an amateur model (transformers backend only)."""
        _check_prompts(prompts)
        if n < 1 or max_new_tokens < 1:
            raise DataError("generate() needs n >= 1 and max_new_tokens >= 1")
        if contrastive is not None:
            if not self.supports_contrastive:
                raise BackendError(
                    f"{type(self).__name__} cannot decode contrastively (it needs both "
                    "models' full next-token logits at every step); use the transformers "
                    "backend"
                )
            from w2s.models.lm.contrastive import as_contrastive

            contrastive = as_contrastive(contrastive, self)
        params = GenParams(
            max_new_tokens, float(temperature), n, self.stop_strings(stop or ()), seed, contrastive
        )
        chats = [to_messages(p, system) for p in prompts]
        keys = [request_key("gen", c, params.key()) for c in chats]
        found = self._cache.get(keys) if self._cache else {}
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo:
            unique = list(dict.fromkeys(keys[i] for i in todo))
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            writes = PartialWrites(self._cache, self.cache_every_s)

            def clean(texts: list[str]) -> list[str]:
                return [cut_at_stop(t, params.stop).strip() for t in texts]

            try:
                outs = self._generate(
                    [chats[first[k]] for k in unique],
                    params,
                    done=lambda pos, texts: writes.add({unique[pos]: clean(texts)}),
                )
                fresh = {k: clean(o) for k, o in zip(unique, outs, strict=True)}
                writes.add(fresh)
            finally:  # stopped or failed: keep what finished
                writes.flush()
            found.update(fresh)
        return [list(found[k]) for k in keys]

    def complete(self, prompts: Sequence[Prompt], **kw: Any) -> list[str]:
        """One greedy (or sampled) completion per prompt."""
        return [g[0] for g in self.generate(prompts, n=1, **kw)]

    def logprobs(self, prompt: Prompt, completion: str, system: str | None = None) -> float:
        """Sum of the log-probs of `completion`'s tokens after `prompt`."""
        return self.logprobs_batch([(prompt, completion)], system=system)[0]

    def logprobs_batch(
        self, pairs: Sequence[tuple[Prompt, str]], system: str | None = None
    ) -> list[float]:
        """`logprobs` for many (prompt, completion) pairs, batched and cached."""
        _check_prompts([p for p, _ in pairs])
        items = [(to_messages(p, system), c) for p, c in pairs]
        version = (self.logprob_version,) if self.logprob_version else ()
        keys = [request_key("logprob", m, c, *version) for m, c in items]
        found = self._cache.get(keys) if self._cache else {}
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        if todo:
            where = {k: i for i, k in enumerate(keys)}
            values = self._logprobs([items[where[k]] for k in todo])
            fresh = dict(zip(todo, (float(v) for v in values), strict=True))
            if self._cache:
                self._cache.put(fresh)
            found.update(fresh)
        return [float(found[k]) for k in keys]

    def sft(self, pairs: Sequence[tuple[Prompt, str]], **params: Any) -> LanguageModel:
        """Fine-tune on (prompt, completion) pairs; returns the tuned model."""
        raise BackendError(
            f"{type(self).__name__} cannot fine-tune; use the transformers backend for SFT"
        )

    @abstractmethod
    def _generate(
        self, chats: list[list[Message]], params: GenParams, done: Done | None = None
    ) -> list[list[str]]:
        """Uncached generation: `params.n` raw texts per chat. A backend that finishes
        chats one batch at a time reports each to `done`, so the cache keeps them."""

    @abstractmethod
    def _logprobs(self, items: list[tuple[list[Message], str]]) -> list[float]:
        """Uncached completion log-probs."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release weights or connections (the object may be reloaded lazily)."""
