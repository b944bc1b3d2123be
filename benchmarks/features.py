"""Feature-extraction throughput: w2s's encoder path vs a bare batched forward.

For each zoo encoder: sentences/s through `w2s.models` (length-bucketed batches, chosen
layer, pooling) and through a bare `model(**batch)` forward over the same texts in their
given order (same dtype and batch size); then the time to re-read 10,000 cached features.
Results go to benchmarks/results/features.json.

    python benchmarks/features.py [--models a,b] [--n 256] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("W2S_QUIET", "1")

from w2s.data import load_task  # noqa: E402
from w2s.models import FeatureStore, make_encoder  # noqa: E402
from w2s.models.encoders import SentenceEncoder, quiet_hf  # noqa: E402
from w2s.zoo import ZOO  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "features.json"


def bare_forward(encoder, texts: list[str], batch_size: int) -> float:
    """Seconds for a plain batched forward of the whole model over `texts`."""
    if isinstance(encoder, SentenceEncoder):
        st = encoder.load()
        tok, model = st.tokenizer, st[0].auto_model
    else:
        from transformers import AutoModel, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(encoder.source.path)
        tok.pad_token = tok.pad_token or tok.eos_token
        model = AutoModel.from_pretrained(encoder.source.path, dtype=torch.bfloat16).eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tok(
                texts[i : i + batch_size],
                padding=True,
                truncation=True,
                max_length=encoder.max_length,
                return_tensors="pt",
            )
            model(**batch)
    return time.perf_counter() - start


def w2s_path(encoder, texts: list[str]) -> float:
    encoder.load()
    start = time.perf_counter()
    encoder.encode(texts)
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
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--n", type=int, default=256, help="texts per model (qwen uses n/2)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-cache", action="store_true", help="skip the cached re-read timing")
    args = ap.parse_args()
    quiet_hf()
    task = load_task("sentiment")
    pool = task.df["text"].tolist()
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "texts": "sentiment (MultiEmo English sentences)",
        "encoders": {},
    }
    for name in args.models.split(","):
        n = args.n // 2 if name == "qwen2.5-1.5b" else args.n
        texts = pool[:n]
        enc = make_encoder(name)
        full = make_encoder(name, layer=-1) if ZOO[name].kind == "causal_lm" else None
        runs = {"w2s": [], "bare": [], "w2s_all_layers": []}
        w2s_path(enc, texts[:32])  # warm-up
        for _ in range(args.repeats):  # interleaved, best of
            runs["w2s"].append(w2s_path(enc, texts))
            runs["bare"].append(bare_forward(enc, texts, enc.batch_size))
            if full is not None:
                runs["w2s_all_layers"].append(w2s_path(full, texts))
        rate = {k: round(n / min(v), 1) for k, v in runs.items() if v}
        entry = {
            "n_texts": n,
            "batch_size": enc.batch_size,
            "dtype": enc.dtype,
            "sentences_per_s": rate,
            "w2s_over_bare": round(rate["w2s"] / rate["bare"], 2),
        }
        if full is not None:
            entry["layer"] = "default round(2L/3)"
            entry["w2s_all_layers_over_bare"] = round(rate["w2s_all_layers"] / rate["bare"], 2)
        results["encoders"][name] = entry
        print(name, json.dumps(entry), flush=True)
        save(results)
    if not args.skip_cache:
        results["cached_rerun"] = cached_rerun(pool[:10000])
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
