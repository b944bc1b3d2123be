"""Weak-to-strong search (Zhou et al. 2024): chunk-level beam search on a strong LM,
steered by a small model pair's log-likelihood ratio.

At each round every beam (a partial answer of the strong model, kept as its own token
ids) is extended by `samples` chunks of `chunk_tokens` sampled tokens; a candidate's
score is log p_tuned(answer so far | prompt) - log p_untuned(answer so far | prompt),
which is the sum over its chunks of log p_tuned(chunk | prefix) - log p_untuned(chunk |
prefix); the `beam_width` best candidates survive. Finished beams (end of turn, a stop
string, or the token budget) are kept as they are. The strong model is never trained,
and the small models score text, so their tokenizer need not be the strong model's.
"""

from __future__ import annotations

from dataclasses import dataclass

from w2s.errors import DataError
from w2s.models.grad import inference_mode
from w2s.models.lm.base import LanguageModel, Prompt, cut_at_stop, to_messages


@dataclass
class LikelihoodRatio:
    """The guidance signal: log p_tuned(text | prompt) - log p_untuned(text | prompt)."""

    tuned: LanguageModel
    untuned: LanguageModel

    def score(self, prompt: Prompt, answers: list[str]) -> list[float]:
        """The log-ratio of each partial answer (0 for an empty one)."""
        pairs = [(prompt, a.strip()) for a in answers]
        t = self.tuned.logprobs_batch(pairs)
        u = self.untuned.logprobs_batch(pairs)
        return [a - b for a, b in zip(t, u, strict=True)]

    def chunk_score(self, prompt: Prompt, prefix: str, chunk: str) -> float:
        """log p_tuned(chunk | prompt, prefix) - log p_untuned(chunk | prompt, prefix)."""
        full, before = self.score(prompt, [prefix + chunk, prefix])
        return full - before


@dataclass
class Beam:
    ids: list[int]
    score: float = 0.0
    done: bool = False


def _strong_parts(lm: LanguageModel):
    from w2s.models.lm.hf import HFLanguageModel

    if not isinstance(lm, HFLanguageModel):
        raise DataError("guided search samples chunks with the transformers backend only")
    return lm


@inference_mode
def sample_chunks(
    lm: LanguageModel,
    prompt_ids: list[int],
    beams: list[list[int]],
    samples: int,
    chunk_tokens: int,
    temperature: float,
) -> list[tuple[int, list[int], bool]]:
    """`samples` continuations of `chunk_tokens` tokens for each beam (answer token ids
    after `prompt_ids`), in one batched call: (beam index, new ids, ended) per candidate.
    Sampling draws from torch's global generator (seed it before a search)."""
    import torch
    from transformers import GenerationConfig

    hf = _strong_parts(lm)
    tok, model = hf.tokenizer, hf.model
    end_ids = hf._end_ids()
    pad = tok.pad_token_id if tok.pad_token_id is not None else end_ids[0]
    seqs = [prompt_ids + b for b in beams]
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        input_ids[row, width - len(s) :] = torch.tensor(s)
        mask[row, width - len(s) :] = 1
    sampling = temperature > 0
    config = GenerationConfig(
        max_new_tokens=chunk_tokens,
        do_sample=sampling,
        temperature=temperature if sampling else None,
        top_p=None,
        top_k=None,
        num_return_sequences=samples if sampling else 1,
        eos_token_id=end_ids,
        pad_token_id=pad,
    )
    out = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
    per = samples if sampling else 1
    cands = []
    for row in range(out.shape[0]):
        new = out[row, width:].tolist()
        ended = False
        for j, t in enumerate(new):
            if t in end_ids:
                new, ended = new[:j], True
                break
        cands.append((row // per, new, ended))
    return cands


def guided_search(
    strong: LanguageModel,
    scorer: LikelihoodRatio,
    prompt: Prompt,
    beam_width: int = 2,
    samples: int = 3,
    chunk_tokens: int = 32,
    max_new_tokens: int = 256,
    temperature: float = 0.7,
    seed: int = 0,
) -> tuple[str, dict[str, float]]:
    """The strong model's answer to `prompt` found by weak-to-strong beam search, and
    diagnostics (rounds, the answer's log-ratio, candidates scored)."""
    import torch

    hf = _strong_parts(strong)
    tok = hf.tokenizer
    stops = hf.stop_strings(())
    room = max(1, hf.max_length - max_new_tokens)
    prompt_ids = hf._encode_prompt(to_messages(prompt))[-room:]
    torch.manual_seed(seed)
    beams = [Beam([])]
    rounds = scored = 0

    def text(ids: list[int]) -> str:
        return tok.decode(ids, skip_special_tokens=True)

    while not all(b.done for b in beams):
        rounds += 1
        live = [b for b in beams if not b.done]
        fresh: dict[tuple[int, ...], Beam] = {}
        for i, new, ended in sample_chunks(
            hf, prompt_ids, [b.ids for b in live], samples, chunk_tokens, temperature
        ):
            ids = (live[i].ids + new)[:max_new_tokens]
            t = text(ids)
            done = ended or len(ids) >= max_new_tokens or cut_at_stop(t, stops) != t
            fresh.setdefault(tuple(ids), Beam(ids, done=done))  # a repeat is scored once
        new_beams = list(fresh.values())
        values = scorer.score(prompt, [cut_at_stop(text(c.ids), stops) for c in new_beams])
        scored += len(new_beams)
        for c, v in zip(new_beams, values, strict=True):
            c.score = v
        kept = [b for b in beams if b.done] + new_beams
        kept.sort(key=lambda b: -b.score)  # stable: earlier candidates win ties
        beams = kept[:beam_width]
    best = max(beams, key=lambda b: b.score)
    answer = cut_at_stop(text(best.ids), stops).strip()
    return answer, {"rounds": rounds, "log_ratio": best.score, "candidates": scored}
