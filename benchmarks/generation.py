"""Generation throughput: transformers vs llama.cpp, one stream vs batched.

For each zoo LM, aggregate generated tokens/s of
- transformers single stream: a bare `model.generate` per prompt, per dtype in `--dtypes`;
- transformers batch B: `HFLanguageModel.generate` (left padding, KV cache,
  length-sorted batches) at each batch size in `--batches`, per dtype;
- llama.cpp single: `LlamaCppLanguageModel` with one sequence at a time;
- llama.cpp batched: the same with `--parallel` sequences per decode call;
each for the GGUF as shipped and re-typed to F16 (`--weights`; `w2s run`'s default is f16).
Greedy, no cache, `--tokens` new tokens at most, tokens counted by re-tokenising the
outputs with each backend's tokenizer. The 1-minute load average is recorded before and
after every figure (the machine may be shared), and so is the process CPU time: on a
loaded machine tokens per CPU-second (all threads summed) is the steadier figure. Results go to
benchmarks/results/generation.json under `by_max_new_tokens` / `--tokens` / model (a run
at another length keeps the others; `agreement`, written by agreement.py, is kept too).
Short answers weigh the prompts' prefill more: measure at the length your runs generate.

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


def load() -> float:
    return round(os.getloadavg()[0], 2)


def timed(fn, count) -> dict:
    """Run `fn()` (returns texts); tokens/s with `count(texts)` tokens, load before/after."""
    before, start, cpu = load(), time.perf_counter(), time.process_time()
    texts = fn()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = count(texts)
    rate = round(n / seconds, 2)
    return {"prompts": len(texts), "tokens": n, "seconds": round(seconds, 2),
            "tokens_per_s": rate, "cpu_seconds": round(cpu, 2),
            "tokens_per_cpu_s": round(n / cpu, 2),
            "load_before": before, "load_after": load()}  # fmt: skip


def hf_count(lm: HFLanguageModel):
    return lambda texts: sum(
        len(lm.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts
    )


@torch.inference_mode()
def hf_single_stream(lm: HFLanguageModel, texts: list[str], tokens: int) -> list[str]:
    """A bare `model.generate` per prompt: the one-request-at-a-time baseline."""
    tok, model, out = lm.tokenizer, lm.model, []
    for t in texts:
        ids = lm._encode_prompt([{"role": "user", "content": t}])
        seq = model.generate(
            input_ids=torch.tensor([ids]), max_new_tokens=tokens, do_sample=False,
            eos_token_id=lm._end_ids(), pad_token_id=tok.pad_token_id,
        )  # fmt: skip
        out.append(tok.decode(seq[0, len(ids) :], skip_special_tokens=True).strip())
    return out


def transformers_runs(name: str, args, dtype: str) -> dict:
    lm = HFLanguageModel(name, dtype=dtype, cache=False)
    lm.complete(["Warm up."], max_new_tokens=4)  # load weights, first-call overheads
    count = hf_count(lm)
    single = prompts(args.single)
    res = {"single_stream": timed(lambda: hf_single_stream(lm, single, args.tokens), count)}
    for b in (int(x) for x in args.batches.split(",")):
        lm.batch_size = b
        texts = prompts(args.prompts)
        res[f"batch_{b}"] = timed(lambda t=texts: lm.complete(t, max_new_tokens=args.tokens), count)
    lm.close()
    return res


def llamacpp_runs(name: str, args, weights: str) -> dict:
    from w2s.models.lm.llamacpp import LlamaCppLanguageModel

    res = {}
    for label, parallel, n in (
        ("single", 1, args.single),
        ("batched", args.parallel, args.prompts),
    ):
        lm = LlamaCppLanguageModel(
            name, parallel=parallel, threads=args.threads, cache=False, weights=weights
        )
        lm.complete(["Warm up."], max_new_tokens=4)

        def count(texts, lm=lm):
            return sum(len(lm.tokenize(t, special=False)) for t in texts)

        texts = prompts(n)
        res[label] = timed(lambda t=texts, lm=lm: lm.complete(t, max_new_tokens=args.tokens), count)
        res[label]["parallel"] = parallel
        lm.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="smollm2-135m,qwen2.5-1.5b")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--prompts", type=int, default=16, help="prompts per batched measurement")
    ap.add_argument("--single", type=int, default=4, help="prompts for the single streams")
    ap.add_argument("--batches", default="16", help="transformers batch sizes")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="transformers dtypes")
    ap.add_argument("--parallel", type=int, default=16, help="llama.cpp sequences per decode")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    ap.add_argument("--weights", default="shipped,f16", help="llama.cpp weights")
    ap.add_argument("--skip", default="", help="comma list: transformers,llamacpp")
    args = ap.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "llamacpp_threads": args.threads,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "load_average_at_start": load(),
        "shared": "the machine is shared with other sessions: see each figure's load",
    }
    models = results.setdefault("by_max_new_tokens", {}).setdefault(str(args.tokens), {})
    for name in args.models.split(","):
        entry = models.get(name, {}) if args.skip else {}
        entry["max_new_tokens"] = args.tokens
        if "transformers" not in args.skip:
            entry["transformers"] = {
                d: transformers_runs(name, args, d) for d in args.dtypes.split(",")
            }
        if "llamacpp" not in args.skip:
            entry["llamacpp"] = {w: llamacpp_runs(name, args, w) for w in args.weights.split(",")}
        if "transformers" in entry and "llamacpp" in entry:
            b = max(int(x) for x in args.batches.split(","))
            hf = entry["transformers"].values()
            for w, runs in entry["llamacpp"].items():
                for unit, key in (("tokens_per_s", ""), ("tokens_per_cpu_s", "per_cpu_s_")):
                    best = max(r[f"batch_{b}"][unit] for r in hf)
                    ratio = round(runs["batched"][unit] / best, 2)
                    entry[f"{key}llamacpp_{w}_batched_over_transformers_batch_{b}"] = ratio
        models[name] = entry
        print(json.dumps({name: entry}, indent=1), flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
