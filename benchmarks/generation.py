"""Generation throughput: w2s's batched `generate` vs a single stream.

For each zoo LM: aggregate generated tokens/s through `HFLanguageModel.generate` (left
padding, KV cache, length-sorted batches) at batch sizes 1, 8 and 16, and of a bare
single-stream `model.generate` (one prompt at a time). Greedy, no cache, `--tokens` new
tokens at most; tokens counted by re-tokenising the outputs. Results go to
benchmarks/results/generation.json.

    nice python benchmarks/generation.py [--models smollm2-135m] [--tokens 64] [--prompts 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

os.environ.setdefault("W2S_QUIET", "1")

from w2s.models.lm.hf import HFLanguageModel  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "generation.json"
TOPICS = [
    "the sea", "a lighthouse keeper", "a lost key", "the first snow", "a robot gardener",
    "an old map", "a night train", "a small dragon", "the last bakery", "a quiet library",
    "a broken clock", "a mountain village", "a paper boat", "a city of bridges",
    "a secret recipe", "a desert storm", "a talking cat", "a winter market",
]  # fmt: skip


def prompts(n: int) -> list[str]:
    return [f"Write a short story about {TOPICS[i % len(TOPICS)]} (attempt {i})." for i in range(n)]


def count_tokens(lm: HFLanguageModel, texts: list[str]) -> int:
    return sum(len(lm.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


def w2s_rate(lm: HFLanguageModel, batch: int, texts: list[str], tokens: int) -> dict:
    lm.batch_size = batch
    start = time.perf_counter()
    out = lm.complete(texts, max_new_tokens=tokens)
    seconds = time.perf_counter() - start
    n = count_tokens(lm, out)
    return {"batch": batch, "prompts": len(texts), "tokens": n, "seconds": round(seconds, 2),
            "tokens_per_s": round(n / seconds, 2)}  # fmt: skip


@torch.inference_mode()
def single_stream(lm: HFLanguageModel, texts: list[str], tokens: int) -> dict:
    """A bare `model.generate` per prompt: the one-request-at-a-time baseline."""
    tok, model = lm.tokenizer, lm.model
    n, start = 0, time.perf_counter()
    for t in texts:
        ids = lm._encode_prompt([{"role": "user", "content": t}])
        seq = model.generate(
            input_ids=torch.tensor([ids]), max_new_tokens=tokens, do_sample=False,
            eos_token_id=lm._end_ids(), pad_token_id=tok.pad_token_id,
        )  # fmt: skip
        text = tok.decode(seq[0, len(ids) :], skip_special_tokens=True)
        n += count_tokens(lm, [text.strip()])
    seconds = time.perf_counter() - start
    return {"prompts": len(texts), "tokens": n, "seconds": round(seconds, 2),
            "tokens_per_s": round(n / seconds, 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m,qwen2.5-1.5b")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--prompts", type=int, default=16, help="prompts per batched measurement")
    ap.add_argument("--single", type=int, default=4, help="prompts for batch 1 and single stream")
    ap.add_argument("--batches", default="1,8,16")
    args = ap.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "load_average_at_start": os.getloadavg()[0],
    }
    results.setdefault("models", {})
    for name in args.models.split(","):
        lm = HFLanguageModel(name, cache=False)
        lm.complete(["Warm up."], max_new_tokens=4)  # load weights, first-call overheads
        base = single_stream(lm, prompts(args.single), args.tokens)
        runs = []
        for b in (int(x) for x in args.batches.split(",")):
            n = args.single if b == 1 else args.prompts
            runs.append(w2s_rate(lm, b, prompts(n), args.tokens))
        for r in runs:
            r["speedup_vs_single_stream"] = round(r["tokens_per_s"] / base["tokens_per_s"], 2)
        results["models"][name] = {
            "max_new_tokens": args.tokens,
            "dtype": lm.dtype,
            "single_stream": base,
            "w2s_generate": runs,
        }
        print(json.dumps({name: results["models"][name]}, indent=1))
        lm.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
