"""The `transformers` backend: zoo names, hub ids or local folders; bf16 on CPU.

Generation is batched with left padding and the KV cache, prompts sorted by length so
batches carry little padding; in bf16 a greedy completion can depend on its batch
neighbours (rounding, not a padding bug), which is accepted for throughput. Greedy
answers are stored batch by batch as they finish: a stopped call resumes with the same
batches, so the same answers. Sampled ones are stored at the end, as their seeds follow
the batch index. Log-prob scoring uses fixed-shape batches (`shape_batches`), so a pair's
score does not depend on which pairs share its batch. SFT trains a LoRA adapter (peft)
with the loss on the completion tokens only; adapters are saved with a
`w2s_adapter.json` and reload with `HFLanguageModel(base, adapter=folder)` or
`HFLanguageModel.from_adapter(folder)`.
"""

from __future__ import annotations

import gc
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from w2s.cache import atomic_path, cache_dir, fingerprint, lock
from w2s.distributed import barrier, is_main, world_size
from w2s.errors import DataError
from w2s.models.encoders import pad_right, quiet_hf, shape_batches
from w2s.models.lm.base import Done, GenParams, LanguageModel, Message, Prompt, to_messages
from w2s.models.lm.lora import LoraParams
from w2s.models.precision import resolve_dtype, torch_dtype
from w2s.progress import progress
from w2s.registry import validate_params
from w2s.zoo import resolve_model

SFT_VERSION = 1
ADAPTER_META = "w2s_adapter.json"


class _StopOnStrings:
    """A stopping criterion: a sequence is done once its new text holds a stop string."""

    def __init__(self, tokenizer, start: int, stop: Sequence[str], tail: int = 24) -> None:
        self.tokenizer, self.start, self.stop, self.tail = tokenizer, start, stop, tail

    def __call__(self, input_ids: torch.Tensor, scores, **kw) -> torch.Tensor:
        new = input_ids[:, self.start :][:, -self.tail :]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts], dtype=torch.bool)


class HFLanguageModel(LanguageModel):
    """A causal LM run with transformers (optionally with a LoRA adapter)."""

    supports_contrastive = True

    def __init__(
        self,
        ref: str,
        dtype: str = "auto",
        batch_size: int = 16,
        max_length: int = 2048,
        adapter: str | Path | None = None,
        chat: bool | None = None,
        cache: bool = True,
    ) -> None:
        self.ref = ref
        self.source = resolve_model(ref)
        if self.source.kind != "causal_lm":
            raise DataError(f"model '{ref}' is a {self.source.kind}, not a causal language model")
        self.dtype = resolve_dtype(dtype)
        self.batch_size = batch_size
        self.max_length = max_length
        self.adapter = Path(adapter) if adapter else None
        self.adapter_meta = _read_adapter_meta(self.adapter) if self.adapter else {}
        self._model = None
        self._tok = None
        self._chat_override = chat
        super().__init__(cache=cache)

    @classmethod
    def from_adapter(cls, folder: str | Path, **kw: Any) -> HFLanguageModel:
        """Load the base named in the adapter's metadata, with the adapter on top (in the
        dtype it was trained in, unless `dtype` is given)."""
        meta = _read_adapter_meta(Path(folder))
        kw.setdefault("dtype", meta.get("dtype", "auto"))
        return cls(meta["base"], adapter=folder, **kw)

    @property
    def key(self) -> str:
        """Everything that changes an output: weights (revision, adapter), dtype, prompt
        rendering (chat) and prompt truncation (max_length)."""
        return fingerprint(
            "hf",
            self.source.revision,
            self.dtype,
            self._chat_override,
            self.adapter_meta.get("fingerprint"),
            self.max_length,
        )

    @property
    def name(self) -> str:
        return self.ref + (
            f"+lora:{self.adapter_meta.get('fingerprint', '')[:8]}" if self.adapter else ""
        )

    # -- loading ---------------------------------------------------------------------------

    @property
    def tokenizer(self):
        if self._tok is None:
            from transformers import AutoTokenizer

            quiet_hf()
            tok = AutoTokenizer.from_pretrained(self.source.path)
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            self._tok = tok
        return self._tok

    @property
    def chat(self) -> bool:  # type: ignore[override]
        if self._chat_override is not None:
            return self._chat_override
        return bool(getattr(self.tokenizer, "chat_template", None))

    def _load_base(self):
        from transformers import AutoModelForCausalLM

        quiet_hf()
        model = AutoModelForCausalLM.from_pretrained(
            self.source.path, dtype=torch_dtype(self.dtype)
        )
        return model

    @property
    def model(self):
        if self._model is None:
            model = self._load_base()
            if self.adapter:
                from peft import PeftModel

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = PeftModel.from_pretrained(model, str(self.adapter))
            self._model = model.eval()
        return self._model

    def close(self) -> None:
        self._model = None
        gc.collect()

    def render(self, messages: list[Message]) -> str:
        if self.chat:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        return super().render(messages)

    def _encode_prompt(self, messages: list[Message]) -> list[int]:
        text = self.render(messages)
        return self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"]

    def _end_ids(self) -> list[int]:
        tok, ids = self.tokenizer, []
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        for t in [tok.eos_token_id, *(gen_eos if isinstance(gen_eos, list) else [gen_eos])]:
            if t is not None and t not in ids:
                ids.append(int(t))
        for name in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"):
            t = tok.convert_tokens_to_ids(name)
            if isinstance(t, int) and t != tok.unk_token_id and t >= 0 and t not in ids:
                ids.append(t)
        return ids

    # -- generation ------------------------------------------------------------------------

    @torch.inference_mode()
    def _generate(
        self, chats: list[list[Message]], params: GenParams, done: Done | None = None
    ) -> list[list[str]]:
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        tok, model = self.tokenizer, self.model
        cd = params.contrastive
        amateur = self._amateur_model(cd.amateur) if cd is not None else None
        room = max(1, self.max_length - params.max_new_tokens)
        ids = [self._encode_prompt(c)[-room:] for c in chats]
        order = np.argsort([len(x) for x in ids], kind="stable")
        end_ids = self._end_ids()
        pad = tok.pad_token_id if tok.pad_token_id is not None else end_ids[0]
        sampling = params.temperature > 0
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=sampling,
            # contrastive: the processor needs raw logits and applies the temperature itself
            temperature=params.temperature if sampling and cd is None else None,
            top_p=None,
            top_k=None,
            num_return_sequences=params.n if sampling else 1,
            eos_token_id=end_ids,
            pad_token_id=pad,
        )
        out: list[list[str]] = [[] for _ in chats]
        per = params.n if sampling else 1  # greedy: one sequence, repeated n times
        bs = max(1, self.batch_size // per)
        with progress() as bar:
            job = bar.add_task(f"generating {self.name}", total=len(chats))
            for b, start in enumerate(range(0, len(chats), bs)):
                idx = order[start : start + bs]
                width = max(len(ids[i]) for i in idx)
                input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    input_ids[row, width - len(ids[i]) :] = torch.tensor(ids[i])
                    mask[row, width - len(ids[i]) :] = 1
                stopping = StoppingCriteriaList(
                    [_StopOnStrings(tok, width, params.stop)] if params.stop else []
                )
                processors = LogitsProcessorList()
                if cd is not None:
                    from w2s.models.lm.contrastive import ContrastiveLogitsProcessor

                    processors.append(
                        ContrastiveLogitsProcessor(
                            amateur, mask, cd.alpha, cd.beta, params.temperature
                        )
                    )
                if params.temperature > 0:
                    torch.manual_seed(params.seed * 100_003 + b)
                seqs = model.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    generation_config=config,
                    stopping_criteria=stopping,
                    logits_processor=processors,
                )
                texts = tok.batch_decode(seqs[:, width:], skip_special_tokens=True)
                for row, i in enumerate(idx):
                    got = texts[row * per : (row + 1) * per]
                    out[i] = got if sampling else got * params.n
                    if done is not None and not sampling:
                        done(int(i), out[i])
                bar.advance(job, len(idx))
        return out

    def _amateur_model(self, amateur: LanguageModel):
        """The torch model of a contrastive amateur; it must share this model's tokenizer."""
        if not isinstance(amateur, HFLanguageModel):
            raise DataError("a contrastive amateur must be a transformers-backend model")
        if amateur.tokenizer.get_vocab() != self.tokenizer.get_vocab():
            raise DataError(
                f"contrastive amateur {amateur.name} has another tokenizer than {self.name}"
            )
        return amateur.model

    # -- scoring ---------------------------------------------------------------------------

    def _pair_ids(self, messages: list[Message], completion: str) -> tuple[list[int], list[int]]:
        p = self._encode_prompt(messages)
        if completion and not self.chat and not completion[0].isspace():
            completion = " " + completion  # plain prompts end with "Answer:"
        c = self.tokenizer(completion, add_special_tokens=False)["input_ids"] if completion else []
        room = max(1, self.max_length - len(c))
        return p[-room:], c

    @torch.inference_mode()
    def _logprobs(self, items: list[tuple[list[Message], str]]) -> list[float]:
        model = self.model
        pairs = [self._pair_ids(m, c) for m, c in items]
        out = [0.0] * len(items)
        scored = [i for i, (_, c) in enumerate(pairs) if c]  # an empty completion scores 0
        lengths = [len(pairs[i][0]) + len(pairs[i][1]) for i in scored]
        for width, rows in shape_batches(lengths, self.batch_size):
            idx = [scored[r] for r in rows]
            seqs = [pairs[i][0] + pairs[i][1] for i in idx]
            input_ids, mask = pad_right(seqs, width, self.tokenizer.pad_token_id)
            logits = model(input_ids=input_ids, attention_mask=mask).logits
            for row, i in enumerate(idx):
                p, c = pairs[i]
                pos = torch.arange(len(p) - 1, len(p) + len(c) - 1)
                lp = logits[row, pos].float().log_softmax(-1)
                out[i] = float(lp[torch.arange(len(c)), torch.tensor(c)].sum())
        return out

    # -- fine-tuning -----------------------------------------------------------------------

    def completion_suffix(self, messages: list[Message], completion: str) -> str:
        """The text after the prompt in a training example: answer plus end of turn."""
        if self.chat:
            prompt = self.render(messages)
            full = self.tokenizer.apply_chat_template(
                [*messages, {"role": "assistant", "content": completion}], tokenize=False
            )
            if full.startswith(prompt):
                return full[len(prompt) :].rstrip("\n")
            return completion + (self.tokenizer.eos_token or "")
        return " " + completion.strip() + (self.tokenizer.eos_token or "")

    def sft(
        self,
        pairs: Sequence[tuple[Prompt, str]],
        out: str | Path | None = None,
        system: str | None = None,
        seed: int = 0,
        **params: Any,
    ) -> HFLanguageModel:
        """Train a LoRA adapter on (prompt, completion) pairs, loss on completion tokens.

        `params` are `LoraParams` (r, alpha, dropout, target_modules, epochs, lr,
        batch_size, max_length); `seed` fixes initialisation and batch order. The adapter
        is content-addressed under the cache (or saved to `out`); training the same pairs
        again loads the saved adapter. Returns the tuned model; `train_losses` in its
        metadata holds per-epoch losses.
        """
        hp = {**validate_params(LoraParams, params, "SFT", DataError).model_dump(), "seed": seed}
        if self.adapter:
            raise DataError("sft() starts from a base model; this one already has an adapter")
        if not pairs:
            raise DataError("sft() needs at least one (prompt, completion) pair")
        chats = [(to_messages(p, system), c) for p, c in pairs]
        keyed = dict(hp)  # a micro-batch of the whole batch is the unsplit computation
        if keyed["micro_batch_size"] is None or keyed["micro_batch_size"] >= keyed["batch_size"]:
            del keyed["micro_batch_size"]
        fp = fingerprint(SFT_VERSION, self.key, chats, keyed, length=20)
        folder = Path(out) if out else cache_dir() / "adapters" / fp
        if (folder / ADAPTER_META).exists() and _read_adapter_meta(folder).get("fingerprint") == fp:
            return self._tuned(folder)
        if world_size() > 1:  # `accelerate launch`: all train together, the main saves
            model, losses = self._train_lora(chats, hp)
            if is_main():
                self._save_adapter(model, folder, fp, len(chats), hp, losses)
            barrier()
            tuned = self._tuned(folder)
            tuned._model = model.eval()
            return tuned
        with lock(folder):
            if not (folder / ADAPTER_META).exists():
                model, losses = self._train_lora(chats, hp)
                self._save_adapter(model, folder, fp, len(chats), hp, losses)
                tuned = self._tuned(folder)
                tuned._model = model.eval()
                return tuned
        return self._tuned(folder)

    def _save_adapter(self, model, folder: Path, fp: str, n_pairs: int, hp, losses) -> None:
        with atomic_path(folder, directory=True) as tmp:
            model.save_pretrained(str(tmp))
            meta = {
                "base": self.ref,
                "base_revision": self.source.revision,
                "dtype": self.dtype,
                "fingerprint": fp,
                "n_pairs": n_pairs,
                "params": hp,
                "train_losses": losses,
            }
            (tmp / ADAPTER_META).write_text(json.dumps(meta, indent=2))

    def _tuned(self, folder: Path) -> HFLanguageModel:
        return HFLanguageModel(
            self.ref,
            dtype=self.dtype,
            batch_size=self.batch_size,
            max_length=self.max_length,
            adapter=folder,
            chat=self._chat_override,
            cache=self._cache is not None,
        )

    def training_examples(
        self, chats: list[tuple[list[Message], str]], max_length: int
    ) -> list[tuple[list[int], list[int]]]:
        """(input ids, labels) per pair; labels are -100 on the prompt tokens."""
        tok, examples = self.tokenizer, []
        for messages, completion in chats:
            p = self._encode_prompt(messages)
            c = tok(self.completion_suffix(messages, completion), add_special_tokens=False)[
                "input_ids"
            ][: max_length - 1]
            p = p[-(max_length - len(c)) :]
            examples.append((p + c, [-100] * len(p) + c))
        return examples

    def _train_lora(self, chats, hp: dict[str, Any]):
        """LoRA training through Accelerate: under `accelerate launch --num_processes N`
        each batch is cut into N contiguous shares, one per process, and the loss is
        normalised by the whole batch's completion tokens, so the averaged gradient is the
        one-process gradient (up to float rounding: shares are padded separately)."""
        from accelerate import Accelerator
        from peft import LoraConfig, get_peft_model

        acc = Accelerator(cpu=not torch.cuda.is_available())
        n_proc, rank = acc.num_processes, acc.process_index
        torch.manual_seed(hp["seed"])
        base = self._load_base()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = get_peft_model(
                base,
                LoraConfig(
                    task_type="CAUSAL_LM",
                    r=hp["r"],
                    lora_alpha=hp["alpha"],
                    lora_dropout=hp["dropout"],
                    target_modules=hp["target_modules"],
                ),
            )
        examples = self.training_examples(chats, hp["max_length"])
        model.to(acc.device)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=0.0)
        ddp, opt = acc.prepare(model, opt)
        gen = torch.Generator().manual_seed(hp["seed"])
        pad = self.tokenizer.pad_token_id
        losses: list[float] = []
        steps = hp["epochs"] * math.ceil(len(examples) / hp["batch_size"])
        model.train()
        with progress() as bar:
            job = bar.add_task(f"LoRA SFT {self.ref} ({len(examples)} pairs)", total=steps)
            for _ in range(hp["epochs"]):
                perm = torch.randperm(len(examples), generator=gen).tolist()
                seen = torch.zeros(2, dtype=torch.float64, device=acc.device)  # nll, tokens
                for start in range(0, len(perm), hp["batch_size"]):
                    batch = [examples[i] for i in perm[start : start + hp["batch_size"]]]
                    n_tok = sum(sum(t != -100 for t in y[1:]) for _, y in batch)
                    share = [batch[i] for i in np.array_split(np.arange(len(batch)), n_proc)[rank]]
                    weight = 1.0 if share else 0.0  # an empty share adds a zero gradient
                    share = share or batch[:1]
                    micro = hp["micro_batch_size"] or len(share)
                    opt.zero_grad()
                    for m in range(0, len(share), micro):  # gradients accumulate
                        ids, labels, mask = (
                            t.to(acc.device) for t in _pad_right(share[m : m + micro], pad)
                        )
                        logits = ddp(input_ids=ids, attention_mask=mask).logits[:, :-1]
                        target = labels[:, 1:]
                        nll = weight * torch.nn.functional.cross_entropy(
                            logits.float().reshape(-1, logits.shape[-1]),
                            target.reshape(-1),
                            ignore_index=-100,
                            reduction="sum",
                        )
                        del logits
                        # DDP averages over processes
                        acc.backward(nll * n_proc / max(n_tok, 1))
                        seen += torch.tensor(
                            [float(nll.detach()), weight * int((target != -100).sum())],
                            dtype=torch.float64,
                            device=acc.device,
                        )
                    acc.clip_grad_norm_(params, 1.0)
                    opt.step()
                    bar.advance(job)
                seen = acc.reduce(seen, "sum")
                losses.append(float(seen[0] / max(float(seen[1]), 1.0)))
        return model.to("cpu"), losses

    def completion_loss(
        self, pairs: Sequence[tuple[Prompt, str]], system: str | None = None
    ) -> float:
        """Mean per-token negative log-likelihood of the completions (with end of turn)."""
        chats = [(to_messages(p, system), c) for p, c in pairs]
        examples = self.training_examples(chats, self.max_length)
        total, count = 0.0, 0
        with torch.inference_mode():
            for ids_list, labels_list in examples:
                ids = torch.tensor([ids_list])
                labels = torch.tensor([labels_list])
                logits = self.model(input_ids=ids).logits[:, :-1]
                target = labels[:, 1:]
                total += float(
                    torch.nn.functional.cross_entropy(
                        logits.float().reshape(-1, logits.shape[-1]),
                        target.reshape(-1),
                        ignore_index=-100,
                        reduction="sum",
                    )
                )
                count += int((target != -100).sum())
        return total / max(count, 1)


def _pad_right(batch, pad: int):
    width = max(len(x) for x, _ in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (x, y) in enumerate(batch):
        ids[row, : len(x)] = torch.tensor(x)
        labels[row, : len(y)] = torch.tensor(y)
        mask[row, : len(x)] = 1
    return ids, labels, mask


def _read_adapter_meta(folder: Path) -> dict[str, Any]:
    meta = folder / ADAPTER_META
    if not meta.exists():
        raise DataError(f"'{folder}' is not a w2s adapter folder (no {ADAPTER_META})")
    return json.loads(meta.read_text())
