"""The generation W2S protocol (Somerstep et al. 2025), end to end.

1. weak supervisor: the weak LM prompted with the task's hidden instruction (e.g. a
   persona), or LoRA-tuned on gold answers of `weak_train`; its answers on
   `strong_train` are the weak supervision, its answers on `test` the weak floor;
2. strong ceiling: the strong LM tuned on gold answers of `strong_train`, or told the
   instruction;
3. each W2S method (unaltered, naive_sft, icl_refine, infer_respond, ask_improve) sees
   only the prompts, the weak answers and the strong LM;
4. every predictor's test answers are graded (numeric match, contains-reference, persona
   markers, LLM judge), PGR per metric with paired bootstrap CIs.
Stages are saved in the run directory as they finish; generations and adapters are
cached by content, so an interrupted or repeated run is cheap.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from w2s.analysis.pgr import bootstrap_difference, bootstrap_pgr_scores
from w2s.cache import fingerprint
from w2s.data.generation import (
    check_prompts,
    gold_completions,
    has_references,
    profile_for,
)
from w2s.data.splits import split_task
from w2s.data.task import Task
from w2s.errors import DataError, W2SError
from w2s.experiment.config import BackendConfig, ExperimentConfig, GenerationConfig, ModelConfig
from w2s.experiment.stages import StageStore
from w2s.graders import Grader, LLMJudge, get_grader
from w2s.graders.deterministic import normalize
from w2s.methods.gen_baselines import GoldSFT, StrongPrompted, Weak
from w2s.methods.generation import (
    GenerationContext,
    GenerationMethod,
    GenerationResult,
    get_generation_method,
)
from w2s.models.lm import LanguageModel, make_lm
from w2s.progress import console

# the method every other one is compared with, paired per test example (the paper's foil)
BASELINE = "naive_sft"
# split sizes for generation runs when the config leaves them unset (generation is slow)
GEN_SIZES = {"weak_train": 64, "strong_train": 64, "val": 8, "test": 64}


def make_model(model: ModelConfig, backend: BackendConfig, g: GenerationConfig) -> LanguageModel:
    """The language model of `model` on `backend`."""
    if backend.backend == "openai":
        if not backend.base_url:
            raise W2SError("the openai backend needs base_url (e.g. http://127.0.0.1:8000/v1)")
        return make_lm(
            backend.served_model or model.model,
            "openai",
            base_url=backend.base_url,
            api_key_env=backend.api_key_env,
            timeout=backend.timeout,
            max_retries=backend.max_retries,
            concurrency=backend.concurrency,
            chat=backend.chat,
            revision=backend.revision,
        )
    return make_lm(model.model, dtype=model.dtype, batch_size=g.batch_size, max_length=g.max_length)


def _judge(cfg: ExperimentConfig, weak: LanguageModel, strong: LanguageModel) -> LLMJudge | None:
    j = cfg.generation.judge
    if not j.model:
        return None
    if j.model in ("strong", "weak"):
        lm = strong if j.model == "strong" else weak
    else:
        lm = make_model(ModelConfig(model=j.model), j.backend, cfg.generation)
    return LLMJudge(
        lm, n=j.n, temperature=j.temperature, max_new_tokens=j.max_new_tokens, seed=cfg.seed
    )


def _graders(cfg: ExperimentConfig, task: Task, names: list[str], judge) -> list[Grader]:
    from w2s.data.generation import get_persona

    graders = [
        get_grader(n, judge=judge, persona=get_persona(cfg.generation.persona)) for n in names
    ]
    if not graders:
        raise W2SError(
            f"no grader for task '{task.name}': set generation.graders (e.g. [judge_quality] "
            "with generation.judge.model)"
        )
    metrics = [g.metric for g in graders]
    dup = {m for m in metrics if metrics.count(m) > 1}
    if dup:
        raise W2SError(f"graders {', '.join(names)} report the same metric '{dup.pop()}'")
    if any(g.needs_reference for g in graders) and not has_references(task.df):
        needy = [g.name for g in graders if g.needs_reference]
        raise DataError(
            f"grader(s) {', '.join(needy)} need reference answers (a `target` column) and "
            f"task '{task.name}' has none for some prompts"
        )
    return graders


def _to_arrays(res: GenerationResult) -> dict[str, np.ndarray]:
    arrays = {f"answers_{s}": np.array(a, dtype=str) for s, a in res.answers.items()}
    if res.train_targets is not None:
        arrays["train_targets"] = np.array(res.train_targets, dtype=str)
    arrays["_diagnostics"] = np.array(json.dumps(res.diagnostics, default=float))
    return arrays


def _from_arrays(arrays: dict[str, np.ndarray]) -> GenerationResult:
    answers = {
        k[8:]: [str(x) for x in v.tolist()] for k, v in arrays.items() if k.startswith("answers_")
    }
    targets = arrays.get("train_targets")
    diag = json.loads(str(arrays["_diagnostics"])) if "_diagnostics" in arrays else {}
    return GenerationResult(answers, None if targets is None else [str(x) for x in targets], diag)


def run_generation(cfg: ExperimentConfig, task: Task) -> dict[str, Any]:
    """Run the generation protocol for `cfg` on `task`; write the run directory."""
    from w2s.experiment.gen_report import write_generation_outputs
    from w2s.experiment.runner import default_out

    t_start = time.perf_counter()
    timing: dict[str, float] = {}
    g = cfg.generation
    methods: list[tuple[str, GenerationMethod]] = []
    for m in cfg.methods:  # fail fast on bad names
        methods.append((m.name, get_generation_method(m.name, **m.params)))
    names = [n for n, _ in methods]
    if len(set(names)) != len(names):
        raise W2SError(f"methods listed twice: {', '.join(names)}")
    check_prompts(task)
    profile = profile_for(task, g.persona, judge=bool(g.judge.model))
    weak_mode = profile.weak_mode if g.weak_mode == "auto" else g.weak_mode
    ceiling_mode = profile.ceiling if g.ceiling == "auto" else g.ceiling
    max_new = g.max_new_tokens or profile.max_new_tokens
    sizes = {k: v if v is not None else GEN_SIZES[k] for k, v in cfg.data.sizes().items()}
    splits = split_task(task, sizes, seed=cfg.seed)
    weak_lm = make_model(cfg.weak, g.weak_backend, g)
    strong_lm = make_model(cfg.strong, g.strong_backend, g)
    judge = _judge(cfg, weak_lm, strong_lm)
    graders = _graders(cfg, task, list(g.graders or profile.graders), judge)

    out = Path(cfg.out) if cfg.out else default_out(cfg)
    out.mkdir(parents=True, exist_ok=True)
    resolved = cfg.model_dump()
    resolved["out"] = str(out)
    resolved["data"] = {f"n_{k}": len(v) for k, v in splits.items()}
    resolved["generation"].update(
        weak_mode=weak_mode,
        ceiling=ceiling_mode,
        max_new_tokens=max_new,
        graders=[gr.name for gr in graders],
    )
    (out / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    stages = StageStore(out / ".stages", fingerprint(task.fingerprint(), resolved, length=20))

    prompts = {
        s: splits[s]["text"].astype(str).tolist() for s in ("weak_train", "strong_train", "test")
    }
    gold = {s: gold_completions(splits[s]) for s in ("weak_train", "strong_train")}
    lora = {**g.lora.model_dump(), "seed": cfg.seed}
    base = {
        "strong": strong_lm,
        "max_new_tokens": max_new,
        "k": g.k,
        "lora": lora,
        "seed": cfg.seed,
    }

    def reference_ctx(weak_answers: dict[str, list[str]]) -> GenerationContext:
        return GenerationContext(
            prompts=prompts,
            weak_answers=weak_answers,
            weak=weak_lm,
            gold=gold,
            instruction=profile.instruction,
            **base,
        )

    def stage(key: str, label: str, method: GenerationMethod, ctx: GenerationContext):
        def fn() -> dict[str, np.ndarray]:
            t = time.perf_counter()
            if not os.environ.get("W2S_QUIET"):
                console.print(f"generation stage [bold]{label}[/bold]")
            res = method.run(ctx)
            timing[label] = time.perf_counter() - t
            return _to_arrays(res)

        return _from_arrays(stages.get_or_run(key, fn))

    weak_res = stage("weak", "weak", Weak(mode=weak_mode), reference_ctx({}))
    weak_answers = weak_res.answers
    ceiling_method = GoldSFT() if ceiling_mode == "gold_sft" else StrongPrompted()
    ceil_res = stage("ceiling", "ceiling", ceiling_method, reference_ctx(weak_answers))
    w2s_ctx = GenerationContext(
        prompts={s: prompts[s] for s in ("strong_train", "test")},
        weak_answers=weak_answers,
        **base,
    )
    results: dict[str, GenerationResult] = {}
    for mcfg, (name, method) in zip(cfg.methods, methods, strict=True):
        ctx = reference_ctx(weak_answers) if method.reference else w2s_ctx
        key = f"method-{name}-{fingerprint(mcfg.params)}"
        results[name] = stage(key, f"method_{name}", method, ctx)

    t = time.perf_counter()
    test = splits["test"]
    refs = test["target"].tolist()
    answers = {
        "weak": weak_answers["test"],
        "ceiling": ceil_res.answers["test"],
        **{n: r.answers["test"] for n, r in results.items()},
    }
    scores = {
        who: {gr.metric: gr.score(prompts["test"], ans, refs) for gr in graders}
        for who, ans in answers.items()
    }
    supervision = supervision_quality(
        graders, splits["strong_train"], weak_answers["strong_train"], results
    )
    timing["grading"] = time.perf_counter() - t
    metrics = score_generation(
        cfg,
        task.name,
        [gr.metric for gr in graders],
        answers,
        scores,
        {n: r.diagnostics for n, r in results.items()},
        {s: len(v) for s, v in splits.items()},
    )
    metrics.update(
        weak_mode=weak_mode,
        ceiling_mode=ceiling_mode,
        graders=[gr.name for gr in graders],
        weak_diagnostics=weak_res.diagnostics,
        ceiling_diagnostics=ceil_res.diagnostics,
        supervision=supervision,
    )
    timing["total"] = time.perf_counter() - t_start
    metrics["out"] = str(out)
    metrics["timing_s"] = {k: round(v, 3) for k, v in timing.items()}
    write_generation_outputs(out, metrics, test, answers, scores, g.examples)
    for warning in metrics["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    for lm in {id(x): x for x in (weak_lm, strong_lm, judge.lm if judge else weak_lm)}.values():
        lm.close()
    return metrics


def supervision_quality(
    graders: list[Grader],
    strong_train: Any,
    weak_answers: list[str],
    results: dict[str, GenerationResult],
) -> dict[str, dict[str, float]]:
    """How good each method's training targets on `strong_train` were: the weak answers
    (what naive SFT learns from) and e.g. the refined answers. A post-hoc diagnostic: gold
    references are used here only, after training; judge graders are skipped for cost."""
    cheap = [gr for gr in graders if not gr.needs_judge]
    if not cheap or not has_references(strong_train):
        return {}
    prompts = strong_train["text"].astype(str).tolist()
    refs = strong_train["target"].tolist()
    targets = {"weak": weak_answers}
    targets.update({n: r.train_targets for n, r in results.items() if r.train_targets})
    return {
        who: {gr.metric: float(np.mean(gr.score(prompts, ans, refs))) for gr in cheap}
        for who, ans in targets.items()
        if len(ans) == len(prompts)
    }


def uninformative_metrics(
    scores: dict[str, dict[str, np.ndarray]], metric_names: list[str]
) -> list[str]:
    """A warning per metric that gave every answer of every predictor the same score (a
    judge that always replies 'Score: 1' cannot separate anything; its PGRs mean nothing)."""
    out = []
    for metric in metric_names:
        values = np.concatenate([np.asarray(per[metric], dtype=float) for per in scores.values()])
        values = values[np.isfinite(values)]
        if values.size > 1 and np.all(values == values[0]):
            out.append(
                f"metric '{metric}' scored every answer {values[0]:g}: the grader separated "
                "nothing, so its PGRs are meaningless"
            )
    return out


def _summary(answers: list[str], scores: dict[str, np.ndarray]) -> dict[str, float]:
    out = {
        m: float(np.nanmean(s)) if np.isfinite(s).any() else float("nan") for m, s in scores.items()
    }
    out["mean_words"] = float(np.mean([len(a.split()) for a in answers])) if answers else 0.0
    return out


def score_generation(
    cfg: ExperimentConfig,
    task_name: str,
    metric_names: list[str],
    answers: dict[str, list[str]],
    scores: dict[str, dict[str, np.ndarray]],
    diagnostics: dict[str, dict],
    n: dict[str, int],
) -> dict[str, Any]:
    """metrics.json's content for a generation run: floor, ceiling, each method with a
    PGR (and CI) per metric."""
    boot = {"n_resamples": cfg.bootstrap.n_resamples, "ci": cfg.bootstrap.ci, "seed": cfg.seed}
    out: dict[str, Any] = {
        "kind": "generation",
        "task": task_name,
        "weak": cfg.weak.model,
        "strong": cfg.strong.model,
        "seed": cfg.seed,
        "n": n,
        "metrics": metric_names,
        "weak_floor": _summary(answers["weak"], scores["weak"]),
        "strong_ceiling": _summary(answers["ceiling"], scores["ceiling"]),
        "methods": {},
        "bootstrap": boot,
        "warnings": uninformative_metrics(scores, metric_names),
        "baseline": BASELINE if BASELINE in scores else None,
    }
    weak_norm = [normalize(a) for a in answers["weak"]]
    for name in answers:
        if name in ("weak", "ceiling"):
            continue
        m = _summary(answers[name], scores[name])
        for metric in metric_names:
            b = bootstrap_pgr_scores(
                scores["weak"][metric],
                scores["ceiling"][metric],
                scores[name][metric],
                n_resamples=boot["n_resamples"],
                ci=boot["ci"],
                seed=cfg.seed,
            )
            m[f"pgr_{metric}"] = b["pgr"]
            m[f"pgr_{metric}_ci"] = b["ci"]
        base = out["baseline"]
        if base and name != base:
            for metric in metric_names:
                d = bootstrap_difference(scores[name][metric], scores[base][metric], **boot)
                m[f"vs_{base}_{metric}"] = d["diff"]
                m[f"vs_{base}_{metric}_ci"] = d["ci"]
        m["same_as_weak"] = float(
            np.mean([normalize(a) == w for a, w in zip(answers[name], weak_norm, strict=True)])
        )
        m.update({f"diag_{k}": v for k, v in diagnostics.get(name, {}).items()})
        out["methods"][name] = m
    return out
