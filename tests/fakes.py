"""A scripted in-process `LanguageModel` for fast tests of methods, judges and caching."""

from __future__ import annotations

from w2s.models.lm.base import GenParams, LanguageModel


class ScriptedLM(LanguageModel):
    """Answers each chat with `reply(chat)` and records every uncached request."""

    def __init__(self, reply=None, name: str = "scripted", cache: bool = False) -> None:
        self._name = name
        self.reply = reply or (lambda chat: "answer: " + chat[-1]["content"][:20])
        self.calls: list[list[dict]] = []
        self.tuned_on: list = []
        super().__init__(cache=cache)

    @property
    def key(self) -> str:
        return f"scripted-{self._name}"

    def _generate(self, chats, params: GenParams, done=None):
        out = []
        for i, chat in enumerate(chats):  # one at a time, reporting each as it finishes
            self.calls.append(chat)
            out.append([self.reply(chat)] * params.n)
            if done is not None:
                done(i, out[-1])
        return out

    def _logprobs(self, items):
        return [-float(len(c)) for _, c in items]

    def sft(self, pairs, **params):
        tuned = ScriptedLM(lambda chat: "tuned", name=self._name + "+sft")
        tuned.tuned_on = list(pairs)
        self.tuned_on = list(pairs)
        return tuned
