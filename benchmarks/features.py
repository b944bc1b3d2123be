"""Feature-extraction throughput: the fixed-shape path vs the previous one.

For each zoo encoder, sentences/s over the same texts through
- `legacy`: the previous path (texts sorted by length, batches padded to their longest
  text; sentence encoders through `SentenceTransformer.encode`), whose features depend on
  the batch;
- `w2s`: the current `Encoder.encode` (each text padded to the next multiple of 16
  tokens, batched only with texts of that width);
- `w2s_fixed_rows`: the same, every batch topped up to `batch_size` rows with dummy rows
  (what fixing the row count as well would cost).
Also the padded tokens each path computes per real token (load-independent), and the
load average while measuring (the machine may be shared). Optionally the time to re-read
10,000 cached features. Results go to benchmarks/results/features.json.

    python benchmarks/features.py [--models a,b] [--n 256] [--repeats 2] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("W2S_QUIET", "1")

from w2s.data import load_task  # noqa: E402
from w2s.models import FeatureStore, make_encoder  # noqa: E402
from w2s.models.encoders import (  # noqa: E402
    SentenceEncoder,
    pad_right,
    pool,
    quiet_hf,
    shape_batches,
)
from w2s.zoo import ZOO  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "features.json"


def token_lengths(enc, texts: list[str]) -> list[int]:
    enc.load()
    if isinstance(enc, SentenceEncoder):
        return enc._model.preprocess(texts)["attention_mask"].sum(1).tolist()
    return [
        len(x)
        for x in enc.tokenizer(texts, truncation=True, max_length=enc.max_length)["input_ids"]
    ]


def padded_tokens(lengths: list[int], rows: int) -> dict[str, float]:
    """Tokens each path runs through the model, per real token."""
    real = sum(lengths)
    srt = sorted(lengths)
    legacy = sum(len(b) * max(b) for b in (srt[i : i + rows] for i in range(0, len(srt), rows)))
    batches = shape_batches(lengths, rows)
    fixed = sum(len(idx) * w for w, idx in batches)
    fixed_rows = sum(rows * w for w, _ in batches)
    return {
        "legacy": round(legacy / real, 3),
        "w2s": round(fixed / real, 3),
        "w2s_fixed_rows": round(fixed_rows / real, 3),
    }


@torch.inference_mode()
def legacy_encode(enc, texts: list[str]) -> np.ndarray:
    """The previous path: length-sorted batches padded to their longest text."""
    if isinstance(enc, SentenceEncoder):
        st = enc.load()
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), st.get_embedding_dimension()), np.float32)
        for start in range(0, len(texts), enc.batch_size):
            idx = order[start : start + enc.batch_size]
            emb = st.encode(
                [texts[i] for i in idx],
                batch_size=enc.batch_size,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
            out[idx] = emb.float().numpy()
        return out
    model, tok = enc.load(), enc.tokenizer
    ids = tok(texts, truncation=True, max_length=enc.max_length)["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), np.float32)
    for start in range(0, len(texts), enc.batch_size):
        idx = order[start : start + enc.batch_size]
        batch = tok.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
        enc._captured = None
        res = model(**batch)
        hidden = enc._captured if enc._captured is not None else res.last_hidden_state
        out[idx] = pool(hidden, batch["attention_mask"], enc.pooling).float().numpy()
    return out


@torch.inference_mode()
def fixed_rows_encode(enc, texts: list[str]) -> None:
    """The current path with every batch topped up to `batch_size` rows (timing only)."""
    rows = enc.batch_size
    if isinstance(enc, SentenceEncoder):
        st = enc.load()
        inputs = st.preprocess(texts)
        for width, idx in shape_batches(inputs["attention_mask"].sum(1).tolist(), rows):
            st(enc._batch(inputs, idx + idx[:1] * (rows - len(idx)), width))
        return
    model, tok = enc.load(), enc.tokenizer
    ids = tok(texts, truncation=True, max_length=enc.max_length)["input_ids"]
    for width, idx in shape_batches([len(x) for x in ids], rows):
        seqs = [ids[i] for i in idx + idx[:1] * (rows - len(idx))]
        input_ids, mask = pad_right(seqs, width, tok.pad_token_id)
        model(input_ids=input_ids, attention_mask=mask)
        pool(enc._captured.float(), mask, enc.pooling)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def cached_rerun(texts: list[str]) -> dict:
    """Fill a fresh store with 10k texts (minilm-l6), then time reading them back."""
    enc = make_encoder("minilm-l6")
    with tempfile.TemporaryDirectory() as tmp:
        store = FeatureStore(enc, root=Path(tmp))
        t = time.perf_counter()
        store.get(texts)
        fill = time.perf_counter() - t
        reads = []
        for _ in range(3):
            t = time.perf_counter()
            store.get(texts)
            reads.append(time.perf_counter() - t)
    return {"n": len(texts), "first_pass_s": round(fill, 2), "cached_read_s": round(min(reads), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="minilm-l6,mpnet-base,smollm2-135m")
    ap.add_argument("--n", type=int, default=256, help="texts per model (causal LMs use n/2)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--cache", action="store_true", help="also time re-reading 10k features")
    args = ap.parse_args()
    quiet_hf()
    pool_texts = load_task("sentiment").df["text"].tolist()
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "texts": "sentiment (MultiEmo English sentences), the first n",
        "encoders": {},
    }
    for name in args.models.split(","):
        n = args.n if ZOO[name].kind == "sentence_encoder" else args.n // 2
        texts = pool_texts[:n]
        enc = make_encoder(name, dtype=args.dtype)
        load_start = os.getloadavg()[0]
        enc.encode(texts[:16])  # warm-up
        runs: dict[str, list[float]] = {"legacy": [], "w2s": [], "w2s_fixed_rows": []}
        for _ in range(args.repeats):  # interleaved, best of
            runs["legacy"].append(timed(legacy_encode, enc, texts))
            runs["w2s"].append(timed(enc.encode, texts))
            runs["w2s_fixed_rows"].append(timed(fixed_rows_encode, enc, texts))
        rate = {k: round(n / min(v), 2) for k, v in runs.items()}
        entry = {
            "n_texts": n,
            "batch_size": enc.batch_size,
            "dtype": enc.dtype,
            "sentences_per_s": rate,
            "w2s_over_legacy": round(rate["w2s"] / rate["legacy"], 2),
            "fixed_rows_over_w2s": round(rate["w2s_fixed_rows"] / rate["w2s"], 2),
            "padded_tokens_per_real_token": padded_tokens(
                token_lengths(enc, texts), enc.batch_size
            ),
            "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        }
        results["encoders"][f"{name}/{enc.dtype}"] = entry
        print(name, json.dumps(entry), flush=True)
        save(results)
    if args.cache:
        results["cached_rerun"] = cached_rerun(pool_texts[:10000])
        print("cached", json.dumps(results["cached_rerun"]))
        save(results)
    print(f"written {RESULTS}")


def save(results: dict) -> None:
    """Merge into the results file, so models can be measured in separate runs."""
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged = {**old, **results, "encoders": {**old.get("encoders", {}), **results["encoders"]}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")


if __name__ == "__main__":
    main()
