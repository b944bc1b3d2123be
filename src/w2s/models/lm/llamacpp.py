"""The `llamacpp` backend: GGUF models run in-process by llama.cpp (llama-cpp-python).

The zoo's GGUF files are loaded as they ship (quantised), or re-typed once to F16
(`weights="f16"`: the same weights, computed without quantised activations; closer to
the transformers reference, same batched speed on CPU, 3.4x the memory of Q4_K_M).
Many prompts decode together:
up to `parallel` sequences share each `llama_decode` call (continuous batching: a finished
sequence's slot takes the next prompt), each sequence with its own KV stream
(`kv_unified=False`), so its logits do not depend on its neighbours. Greedy decoding takes
the arg-max; sampling draws from softmax(logits / temperature) with a generator seeded by
(seed, prompt, sample index), so it is reproducible and independent of the batch.

Log-probs are computed here from llama.cpp's raw logits (one pair per decode call), not
through llama-cpp-python's `create_completion(echo=True, logprobs=...)`, whose prompt
log-probs are wrong in 0.3.36. SFT trains with transformers (`HFLanguageModel.sft`) and
serves the LoRA adapter through llama.cpp after converting it to GGUF
(`w2s.models.lm.gguf_lora`).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from w2s.cache import atomic_path, cache_dir, fingerprint, lock
from w2s.errors import BackendError, DataError
from w2s.models.lm.base import Done, GenParams, LanguageModel, Message, Prompt
from w2s.progress import progress, status

LLAMACPP_VERSION = "0.3.36"
INSTALL_HINT = (
    "the llamacpp backend needs llama-cpp-python: pip install 'w2s[llamacpp]' "
    f"(llama-cpp-python=={LLAMACPP_VERSION}; it compiles llama.cpp, about 6 minutes on 2 cores)"
)
_LOG_TAIL: list[str] = []  # llama.cpp's last log lines, quoted when loading fails


def import_llama_cpp():
    """The `llama_cpp` module with its logging silenced, or one clear `BackendError`."""
    try:
        import llama_cpp
    except ImportError:
        raise BackendError(INSTALL_HINT) from None
    if not getattr(import_llama_cpp, "_ready", False):
        llama_cpp.llama_backend_init()

        @llama_cpp.llama_log_callback
        def _log(level: int, text: bytes, user_data) -> None:
            _LOG_TAIL.append(text.decode("utf-8", errors="replace"))
            del _LOG_TAIL[:-40]

        llama_cpp.llama_log_set(_log, ctypes.c_void_p(0))
        import_llama_cpp._callback = _log  # keep the C callback alive
        import_llama_cpp._ready = True
    return llama_cpp


def _last_error() -> str:
    lines = [ln.strip() for ln in "".join(_LOG_TAIL).splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no details from llama.cpp"


def render_template(template: str, messages: list[Message], bos: str, eos: str) -> str:
    """A chat rendered by a GGUF's Jinja chat template, as transformers renders it."""
    import json

    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise DataError(f"the model's chat template refused the prompt: {message}")

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = lambda x, indent=None, **kw: json.dumps(
        x, ensure_ascii=False, indent=indent
    )
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos
    )


@dataclass
class _Seq:
    """One sequence being decoded in a slot."""

    job: int
    prompt: list[int]
    rng: np.random.Generator | None
    fed: int = 0  # tokens of `prompt` + `out` already in the KV cache
    out: list[int] = field(default_factory=list)
    pieces: list[bytes] = field(default_factory=list)


class LlamaCppLanguageModel(LanguageModel):
    """A GGUF causal LM (zoo name or `.gguf` path), optionally with a GGUF LoRA adapter.

    `parallel` sequences decode at once; `max_length` is each sequence's context (prompts
    are truncated from the left to leave room for the new tokens, as in transformers).
    `adapter` is a w2s adapter folder (trained by the transformers backend); `dtype` is
    only the precision in which `sft` trains with transformers. `weights`: "shipped"
    (the GGUF as it is) or "f16" (re-typed once, kept under the cache).
    """

    logprob_version = 1  # prompt prefix and completion decoded in two fixed steps

    def __init__(
        self,
        ref: str,
        parallel: int = 16,
        max_length: int = 2048,
        threads: int | None = None,
        adapter: str | Path | None = None,
        chat: bool | None = None,
        dtype: str = "auto",
        cache: bool = True,
        batch_size: int | None = None,
        weights: str = "shipped",
    ) -> None:
        if weights not in WEIGHTS:
            raise DataError(f"llama.cpp weights are {' or '.join(WEIGHTS)}, not '{weights}'")
        self.ref = ref
        self.weights = weights
        self.parallel = max(1, batch_size or parallel)
        self.max_length = max_length
        self.threads = threads or min(8, os.cpu_count() or 1)
        self.dtype = dtype
        self.adapter = Path(adapter) if adapter else None
        self.adapter_meta = _read_meta(self.adapter) if self.adapter else {}
        self.gguf, self.revision = gguf_of(ref)
        self._chat_override = chat
        self._model = None
        self._ctx = None
        self._lora = None
        self._meta: dict[str, Any] = {}
        super().__init__(cache=cache)

    @classmethod
    def from_adapter(cls, folder: str | Path, **kw: Any) -> LlamaCppLanguageModel:
        """The base named in a w2s adapter's metadata, with the adapter on top."""
        meta = _read_meta(Path(folder))
        kw.setdefault("dtype", meta.get("dtype", "auto"))
        return cls(meta["base"], adapter=folder, **kw)

    @property
    def key(self) -> str:
        """Weights (GGUF, adapter), library version, prompt rendering and truncation."""
        return fingerprint(
            "llamacpp",
            LLAMACPP_VERSION,
            self.revision,
            None if self.weights == "shipped" else self.weights,
            self.adapter_meta.get("fingerprint"),
            self._chat_override,
            self.max_length,
        )

    @property
    def name(self) -> str:
        lora = self.adapter_meta.get("fingerprint", "")[:8]
        kind = "llama.cpp" if self.weights == "shipped" else f"llama.cpp, {self.weights}"
        return f"{self.ref} ({kind})" + (f"+lora:{lora}" if self.adapter else "")

    # -- loading ---------------------------------------------------------------------------

    def _load(self) -> None:
        if self._ctx is not None:
            return
        lc = import_llama_cpp()
        gguf = self.gguf
        if self.weights != "shipped":
            gguf = retyped_gguf(gguf, self.revision, self.weights, self.threads)
        mparams = lc.llama_model_default_params()
        model = lc.llama_model_load_from_file(str(gguf).encode(), mparams)
        if model is None:
            raise BackendError(f"llama.cpp could not load {gguf.name}: {_last_error()}")
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = self.max_length * self.parallel
        cparams.n_seq_max = self.parallel
        cparams.kv_unified = False  # one KV stream per sequence: no cross-talk
        cparams.n_batch = cparams.n_ubatch = 512
        cparams.n_threads = cparams.n_threads_batch = self.threads
        ctx = lc.llama_init_from_model(model, cparams)
        if ctx is None:
            lc.llama_model_free(model)
            raise BackendError(f"llama.cpp could not create a context: {_last_error()}")
        self._model, self._ctx = model, ctx
        self._vocab = lc.llama_model_get_vocab(model)
        self._n_vocab = lc.llama_vocab_n_tokens(self._vocab)
        self._mem = lc.llama_get_memory(ctx)
        if self.adapter:
            from w2s.models.lm.gguf_lora import adapter_gguf

            path = adapter_gguf(self.adapter)
            lora = lc.llama_adapter_lora_init(model, str(path).encode())
            if lora is None:
                self.close()
                raise BackendError(f"llama.cpp could not load the adapter {path}: {_last_error()}")
            arr = (lc.llama_adapter_lora_p_ctypes * 1)(lora)
            scale = (ctypes.c_float * 1)(1.0)
            if lc.llama_set_adapters_lora(ctx, arr, 1, scale) != 0:
                self.close()
                raise BackendError(f"llama.cpp could not apply the adapter {path}")
            self._lora = lora

    def close(self) -> None:
        if self._ctx is None:
            return
        import llama_cpp as lc

        lc.llama_free(self._ctx)
        if self._lora is not None:
            lc.llama_adapter_lora_free(self._lora)
        lc.llama_model_free(self._model)
        self._ctx = self._model = self._lora = None

    def __del__(self) -> None:
        try:  # noqa: SIM105  (contextlib may be gone at interpreter shutdown)
            self.close()
        except Exception:
            pass

    def _token_text(self, token: int) -> str:
        import llama_cpp as lc

        return (lc.llama_vocab_get_text(self._vocab, token) or b"").decode("utf-8", "replace")

    @property
    def chat_template(self) -> str | None:
        """The GGUF's chat template (None for base models without one)."""
        self._load()
        if "template" not in self._meta:
            import llama_cpp as lc

            raw = lc.llama_model_chat_template(self._model, None)
            self._meta["template"] = raw.decode("utf-8") if raw else None
        return self._meta["template"]

    @property
    def chat(self) -> bool:  # type: ignore[override]
        if self._chat_override is not None:
            return self._chat_override
        return bool(self.chat_template)

    def render(self, messages: list[Message]) -> str:
        if not self.chat:
            return super().render(messages)
        import llama_cpp as lc

        bos = self._token_text(lc.llama_vocab_bos(self._vocab))
        eos = self._token_text(lc.llama_vocab_eos(self._vocab))
        return render_template(self.chat_template or "", messages, bos, eos)

    def tokenize(self, text: str, special: bool) -> list[int]:
        """llama.cpp's tokens of `text` (`special`: add BOS where the model wants one)."""
        import llama_cpp as lc

        self._load()
        raw = text.encode("utf-8")
        size = len(raw) + 8
        buf = (lc.llama_token * size)()
        n = lc.llama_tokenize(self._vocab, raw, len(raw), buf, size, special, True)
        if n < 0:
            raise BackendError(f"llama.cpp could not tokenize a text of {len(raw)} bytes")
        return list(buf[:n])

    def _encode_prompt(self, messages: list[Message]) -> list[int]:
        return self.tokenize(self.render(messages), special=not self.chat)

    def _piece(self, token: int) -> bytes:
        import llama_cpp as lc

        buf = ctypes.create_string_buffer(64)
        n = lc.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
        return buf.raw[: max(n, 0)]

    # -- decoding --------------------------------------------------------------------------

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One `llama_decode` of (token, position, sequence, wants logits) entries."""
        import llama_cpp as lc

        batch = lc.llama_batch_init(len(entries), 0, 1)
        try:
            for i, (tok, pos, seq, out) in enumerate(entries):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, pos, 1
                batch.seq_id[i][0], batch.logits[i] = seq, out
            batch.n_tokens = len(entries)
            rc = lc.llama_decode(self._ctx, batch)
        finally:
            lc.llama_batch_free(batch)
        if rc != 0:
            raise BackendError(f"llama.cpp failed to decode a batch (code {rc}): {_last_error()}")

    def _logits(self, i: int) -> np.ndarray:
        import llama_cpp as lc

        ptr = lc.llama_get_logits_ith(self._ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))

    def _pick(self, seq: _Seq, logits: np.ndarray, temperature: float) -> int:
        if seq.rng is None:
            return int(np.argmax(logits))
        z = logits.astype(np.float64) / temperature
        p = np.exp(z - z.max())
        cdf = np.cumsum(p)
        return int(min(np.searchsorted(cdf, seq.rng.random() * cdf[-1], side="right"), len(p) - 1))

    def _generate(
        self, chats: list[list[Message]], params: GenParams, done: Done | None = None
    ) -> list[list[str]]:
        import llama_cpp as lc

        self._load()
        room = max(1, self.max_length - params.max_new_tokens)
        prompts = [self._encode_prompt(c)[-room:] for c in chats]
        sampling = params.temperature > 0
        per = params.n if sampling else 1  # greedy: one sequence, repeated n times
        jobs = [(i, j) for i in range(len(chats)) for j in range(per)]
        texts: list[list[bytes]] = [[] for _ in jobs]
        left = [per] * len(chats)  # unfinished samples of each chat
        queue = list(range(len(jobs)))[::-1]
        slots: dict[int, _Seq] = {}
        lc.llama_memory_clear(self._mem, True)
        with progress() as bar:
            task = bar.add_task(f"generating {self.name}", total=len(chats) * per)
            while queue or slots:
                for s in range(self.parallel):
                    if s not in slots and queue:
                        k = queue.pop()
                        i, j = jobs[k]
                        rng = None
                        if sampling:
                            salt = int(fingerprint(chats[i], length=15), 16)
                            rng = np.random.default_rng([params.seed, salt, j])
                        slots[s] = _Seq(k, prompts[i], rng)
                entries, owners = self._plan(slots)
                self._decode(entries)
                for row, s in owners:
                    seq = slots[s]
                    tok = self._pick(seq, self._logits(row), params.temperature)
                    if self._finished(seq, tok, params):
                        texts[seq.job] = seq.pieces
                        lc.llama_memory_seq_rm(self._mem, s, -1, -1)
                        del slots[s]
                        bar.advance(task)
                        i = jobs[seq.job][0]
                        left[i] -= 1
                        if done is not None and not left[i]:
                            done(i, self._texts(texts, i * per, per, params.n))
        return [self._texts(texts, i * per, per, params.n) for i in range(len(chats))]

    @staticmethod
    def _texts(texts: list[list[bytes]], start: int, per: int, n: int) -> list[str]:
        """One chat's `n` texts from its `per` decoded jobs (greedy: one, repeated)."""
        got = [b"".join(t).decode("utf-8", errors="replace") for t in texts[start : start + per]]
        return got if per == n else got * n

    def _plan(self, slots: dict[int, _Seq], budget: int = 512):
        """The next decode: one new token per generating sequence, then prompt chunks."""
        entries, owners = [], []
        for s, seq in slots.items():
            if seq.fed >= len(seq.prompt):  # generating: feed the last sampled token
                owners.append((len(entries), s))
                entries.append((seq.out[-1], seq.fed, s, True))
                seq.fed += 1
        for s, seq in slots.items():
            left = len(seq.prompt) - seq.fed
            if left <= 0 or len(entries) >= budget:
                continue
            take = min(left, budget - len(entries))
            for p in range(seq.fed, seq.fed + take):
                entries.append((seq.prompt[p], p, s, p == len(seq.prompt) - 1))
            if seq.fed + take == len(seq.prompt):
                owners.append((len(entries) - 1, s))
            seq.fed += take
        return entries, owners

    def _finished(self, seq: _Seq, tok: int, params: GenParams) -> bool:
        """Record `tok`; True when the sequence ends (end of turn, budget or stop string)."""
        import llama_cpp as lc

        if lc.llama_vocab_is_eog(self._vocab, tok):
            return True
        seq.out.append(tok)
        seq.pieces.append(self._piece(tok))
        if len(seq.out) >= params.max_new_tokens:
            return True
        if params.stop:
            tail = b"".join(seq.pieces[-24:]).decode("utf-8", errors="ignore")
            return any(s in tail for s in params.stop)
        return False

    # -- scoring ---------------------------------------------------------------------------

    def _pair_ids(self, messages: list[Message], completion: str) -> tuple[list[int], list[int]]:
        p = self._encode_prompt(messages)
        if completion and not self.chat and not completion[0].isspace():
            completion = " " + completion  # plain prompts end with "Answer:"
        c = self.tokenize(completion, special=False) if completion else []
        room = max(1, self.max_length - len(c))
        return p[-room:], c

    def _logprobs(self, items: list[tuple[list[Message], str]]) -> list[float]:
        """Each pair in two fixed steps: the prompt less its last token (kept in the KV
        cache and reused by the next pair with the same prompt, as G-Eval's ten score
        replies are), then the last prompt token and the completion. A pair's value does
        not depend on its neighbours."""
        import llama_cpp as lc

        self._load()
        out = []
        kept: list[int] | None = None  # the prompt prefix now in sequence 0's KV cache
        for messages, completion in items:
            p, c = self._pair_ids(messages, completion)
            if not c:
                out.append(0.0)
                continue
            head, tail = p[:-1], p[-1:] + c
            if head == kept:
                lc.llama_memory_seq_rm(self._mem, 0, len(head), -1)
            else:
                lc.llama_memory_clear(self._mem, True)
                for start in range(0, len(head), 512):
                    chunk = range(start, min(start + 512, len(head)))
                    self._decode([(head[q], q, 0, False) for q in chunk])
                kept = head
            total = 0.0
            for start in range(0, len(c), 512):  # tail[r] predicts tail[r + 1]
                rows = range(start, min(start + 512, len(c)))
                self._decode([(tail[r], len(head) + r, 0, True) for r in rows])
                for r in rows:
                    z = self._logits(r - start).astype(np.float64)
                    m = z.max()
                    total += float(z[tail[r + 1]] - m - np.log(np.exp(z - m).sum()))
            out.append(total)
        return out

    # -- fine-tuning -----------------------------------------------------------------------

    def sft(self, pairs: Sequence[tuple[Prompt, str]], **params: Any) -> LlamaCppLanguageModel:
        """Train a LoRA adapter with transformers (the reference path) on the same base,
        then serve it through llama.cpp."""
        from w2s.models.lm.hf import HFLanguageModel

        if self.adapter:
            raise DataError("sft() starts from a base model; this one already has an adapter")
        trainer = HFLanguageModel(
            self.ref,
            dtype=self.dtype,
            max_length=self.max_length,
            chat=self._chat_override,
            cache=False,
        )
        tuned = trainer.sft(pairs, **params)
        tuned.close()
        trainer.close()
        return LlamaCppLanguageModel(
            self.ref,
            parallel=self.parallel,
            max_length=self.max_length,
            threads=self.threads,
            adapter=tuned.adapter,
            chat=self._chat_override,
            dtype=self.dtype,
            cache=self._cache is not None,
            weights=self.weights,
        )


WEIGHTS = ("shipped", "f16")


def retyped_gguf(path: Path, revision: str, weights: str, threads: int) -> Path:
    """`path` re-typed to `weights` by llama.cpp's quantizer, once, kept under the cache."""
    out = cache_dir() / "gguf-retyped" / f"{path.stem}-{revision[:12]}-{weights}.gguf"
    if out.is_file():
        return out
    lc = import_llama_cpp()
    with lock(out):
        if out.is_file():
            return out
        with status(f"re-typing {path.name} to {weights} (once)"), atomic_path(out) as tmp:
            params = lc.llama_model_quantize_default_params()
            params.ftype = {"f16": lc.LLAMA_FTYPE_MOSTLY_F16}[weights]
            params.allow_requantize = True
            params.nthread = threads
            if lc.llama_model_quantize(str(path).encode(), str(tmp).encode(), params) != 0:
                raise BackendError(f"llama.cpp could not re-type {path.name}: {_last_error()}")
    return out


def gguf_of(ref: str) -> tuple[Path, str]:
    """The GGUF file of a zoo model or a `.gguf` path, with a revision for cache keys."""
    from w2s.zoo import ZOO

    if ref in ZOO:
        model = ZOO[ref]
        if model.fmt != "gguf":
            raise DataError(f"zoo model '{ref}' has no GGUF file; the llamacpp backend needs one")
        from w2s.zoo import resolve_model
        from w2s.zoo.fetch import gguf_path

        resolve_model(ref)  # fetches and verifies the GGUF on first use
        return gguf_path(model), model.artifact_sha256
    path = Path(ref).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        st = path.stat()
        return path, fingerprint(path.name, st.st_size, int(st.st_mtime), length=16)
    gguf_zoo = ", ".join(n for n, m in ZOO.items() if m.fmt == "gguf")
    raise DataError(
        f"the llamacpp backend takes a zoo model with a GGUF ({gguf_zoo}) or a .gguf file, "
        f"not '{ref}'"
    )


def _read_meta(folder: Path) -> dict[str, Any]:
    from w2s.models.lm.hf import _read_adapter_meta

    return _read_adapter_meta(folder)
