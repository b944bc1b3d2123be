"""Final-answer agreement: llama.cpp (the zoo GGUF as shipped) vs transformers float32.

On the first `--n` reasoning-gym `gsm_symbolic` problems (seed 0), both backends answer
greedily, zero-shot, through the same chat template; the final number of each answer
(the `numeric` grader's extraction) is compared. Both sides go through the generation
cache, so the transformers half can be run alone first (`--only transformers`).
`--adapter FOLDER` compares a LoRA-tuned student instead (transformers base + adapter vs
llama.cpp GGUF base + converted GGUF adapter). `--weights f16` runs llama.cpp on the GGUF
re-typed to F16 (the same weights without quantised arithmetic), `shipped` on the file as
it is. Results are merged into benchmarks/results/generation.json under `agreement`.

    nice python benchmarks/agreement.py [--model qwen2.5-1.5b] [--n 100] [--weights f16]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("W2S_QUIET", "1")

from w2s.data.generation import load_gsm  # noqa: E402
from w2s.graders.deterministic import final_number, numbers_match  # noqa: E402
from w2s.models.lm import make_lm  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "generation.json"


def answers(backend: str, ref: str, prompts: list[str], tokens: int, **kw) -> tuple[list, float]:
    lm = make_lm(ref, backend, **kw)
    start, out = time.perf_counter(), []
    for i in range(0, len(prompts), 16):  # cached chunk by chunk: a killed run resumes
        out += lm.complete(prompts[i : i + 16], max_new_tokens=tokens)
        print(f"{backend}: {len(out)}/{len(prompts)} answered", flush=True)
    seconds = time.perf_counter() - start
    lm.close()
    return out, seconds


def same_final(a: str, b: str) -> bool:
    x, y = final_number(a), final_number(b)
    return x is not None and y is not None and abs(x - y) <= 1e-6 * max(1.0, abs(y))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-1.5b")
    ap.add_argument("--adapter", default=None, help="a w2s LoRA adapter folder of --model")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--only", choices=["transformers", "llamacpp"], default=None)
    ap.add_argument("--weights", choices=["shipped", "f16"], default="f16")
    args = ap.parse_args()
    df = load_gsm(size=args.n, seed=0).df.head(args.n)
    prompts, gold = df["text"].astype(str).tolist(), df["target"].tolist()
    ref = args.adapter or args.model
    runs = {}
    for backend in ("transformers", "llamacpp"):
        if args.only and backend != args.only:
            continue
        kw = {"dtype": "float32", "batch_size": 16}
        if backend == "llamacpp":
            kw = {"weights": args.weights}
        runs[backend] = answers(backend, ref, prompts, args.tokens, **kw)
        print(f"{backend}: {runs[backend][1]:.0f} s", flush=True)
    if len(runs) < 2:
        return
    hf, lc = runs["transformers"][0], runs["llamacpp"][0]
    agree = [same_final(a, b) for a, b in zip(hf, lc, strict=True)]
    both_none = [
        final_number(a) is None and final_number(b) is None for a, b in zip(hf, lc, strict=True)
    ]
    entry = {
        "model": args.model,
        "adapter": Path(args.adapter).name if args.adapter else None,
        "llamacpp_weights": args.weights,
        "problems": len(prompts),
        "max_new_tokens": args.tokens,
        "final_answer_agreement": round(sum(agree) / len(agree), 3),
        "identical_text": round(sum(a == b for a, b in zip(hf, lc, strict=True)) / len(hf), 3),
        "no_number_in_either": sum(both_none),
        "accuracy_transformers_fp32": round(
            sum(numbers_match(a, g) for a, g in zip(hf, gold, strict=True)) / len(gold), 3
        ),
        "accuracy_llamacpp": round(
            sum(numbers_match(a, g) for a, g in zip(lc, gold, strict=True)) / len(gold), 3
        ),
        "seconds_this_run": {k: round(v[1], 1) for k, v in runs.items()},
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(entry, indent=1))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    name = args.model + ("+lora" if args.adapter else "")
    name += "@f16" if args.weights == "f16" else ""
    results.setdefault("agreement", {})[name] = entry
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
