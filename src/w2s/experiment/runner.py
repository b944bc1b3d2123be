"""The classification W2S protocol (Burns et al. 2023), end to end.

1. weak floor: a probe on the weak model's features, trained on gold `weak_train`;
2. its soft predictions on `strong_train` and `val` are the weak labels;
3. strong ceiling: a probe on the strong model's features, trained on gold `strong_train`;
4. each W2S method trains the strong student on the weak labels (validation: weak only);
5. everything is scored on gold `test`, PGR with paired bootstrap CIs.
Stages are saved in the run directory as they finish, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from w2s.analysis.coverage import coverage_mask, coverage_report, expansion_estimate
from w2s.analysis.metrics import agreement, classification_metrics
from w2s.analysis.misfit import misfit, misfit_report
from w2s.analysis.pgr import bootstrap_pgr
from w2s.cache import fingerprint
from w2s.data import SPLITS, load_task, split_task
from w2s.data.splits import resolve_sizes
from w2s.errors import W2SError
from w2s.experiment.config import ExperimentConfig, ModelConfig
from w2s.experiment.report import write_outputs
from w2s.experiment.stages import StageStore
from w2s.methods import MethodContext, get_method
from w2s.models import features, make_encoder
from w2s.models.heads import Probe
from w2s.progress import console
from w2s.zoo import resolve_model


def default_out(cfg: ExperimentConfig) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{cfg.task}__{cfg.weak.model}__{cfg.strong.model}")
    return Path("runs") / f"{slug.strip('_')}__s{cfg.seed}"


def _encoder(m: ModelConfig):
    return make_encoder(
        m.model,
        layer=m.layer,
        pooling=m.pooling,
        max_length=m.max_length,
        batch_size=m.batch_size,
        dtype=m.dtype,
    )


def run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    """Run the protocol for `cfg`; write the run directory; return metrics.json's dict."""
    t_start = time.perf_counter()
    timing: dict[str, float] = {}
    task = load_task(cfg.task)
    if task.kind == "generation":
        from w2s.experiment.generation import run_generation

        return run_generation(cfg, task)
    methods = [get_method(m.name, **m.params) for m in cfg.methods]  # fail fast on bad names
    names = [m.name for m in cfg.methods]
    if len(set(names)) != len(names):
        raise W2SError(f"methods listed twice: {', '.join(names)}")
    if task.kind != "classification":
        raise W2SError(
            f"task '{cfg.task}' is a {task.kind} task; this protocol needs classification"
        )
    sizes = resolve_sizes(task, cfg.data.sizes())
    splits = split_task(task, sizes, seed=cfg.seed)
    for m in (cfg.weak, cfg.strong):  # fail fast on a bad model before any work
        resolve_model(m.model)
    out = Path(cfg.out) if cfg.out else default_out(cfg)
    out.mkdir(parents=True, exist_ok=True)
    resolved = cfg.model_dump()
    resolved["out"] = str(out)
    resolved["data"] = {f"n_{k}": len(v) for k, v in splits.items()}
    (out / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    stages = StageStore(out / ".stages", fingerprint(task.fingerprint(), resolved, length=20))
    gold = {s: splits[s]["label"].to_numpy() for s in SPLITS}
    text = {s: splits[s]["text"].tolist() for s in SPLITS}
    k = task.n_classes

    def probe(seed_offset: int = 0) -> Probe:
        return Probe(n_classes=k, seed=cfg.seed + seed_offset, **cfg.probe.model_dump())

    def weak_stage() -> dict[str, np.ndarray]:
        t = time.perf_counter()
        enc = _encoder(cfg.weak)
        f = {s: features(enc, text[s]) for s in SPLITS}
        timing["features_weak"] = time.perf_counter() - t
        t = time.perf_counter()
        floor = probe().fit(f["weak_train"], gold["weak_train"], X_val=f["val"], y_val=gold["val"])
        timing["weak_floor"] = time.perf_counter() - t
        return {s: floor.predict_proba(f[s]) for s in ("strong_train", "val", "test")}

    weak = stages.get_or_run("weak", weak_stage)
    t = time.perf_counter()
    enc = _encoder(cfg.strong)
    fs = {s: features(enc, text[s]) for s in ("strong_train", "val", "test")}
    timing["features_strong"] = time.perf_counter() - t

    def ceiling_stage() -> dict[str, np.ndarray]:
        t = time.perf_counter()
        ceil = probe(1).fit(
            fs["strong_train"], gold["strong_train"], X_val=fs["val"], y_val=gold["val"]
        )
        timing["strong_ceiling"] = time.perf_counter() - t
        return {"test": ceil.predict_proba(fs["test"])}

    ceiling = stages.get_or_run("ceiling", ceiling_stage)
    ctx = MethodContext(
        n_classes=k,
        x_train=fs["strong_train"],
        weak_train=weak["strong_train"],
        x_val=fs["val"],
        weak_val=weak["val"],
        x_test=fs["test"],
        texts={s: text[s] for s in ("strong_train", "val", "test")},
        class_names=task.classes,
        strong_model=cfg.strong.model,
        probe=cfg.probe.model_dump(),
        seed=cfg.seed + 2,
    )
    students: dict[str, dict[str, np.ndarray]] = {}
    diagnostics: dict[str, dict] = {}
    for mcfg, method in zip(cfg.methods, methods, strict=True):

        def method_stage(method=method, name=mcfg.name) -> dict[str, np.ndarray]:
            t = time.perf_counter()
            console.print(f"training W2S method [bold]{name}[/bold]")
            res = method.run(ctx)
            timing[f"method_{name}"] = time.perf_counter() - t
            arrays = {"test": res.test_proba}
            if res.train_proba is not None:
                arrays["train"] = res.train_proba
            arrays["_diagnostics"] = np.array(json.dumps(res.diagnostics, default=float))
            return arrays

        key = f"method-{mcfg.name}-{fingerprint(mcfg.params)}"
        students[mcfg.name] = stages.get_or_run(key, method_stage)
        diagnostics[mcfg.name] = _parse_diag(students[mcfg.name].pop("_diagnostics", None))

    t = time.perf_counter()
    metrics = score(
        cfg,
        task.name,
        task.classes,
        gold["test"],
        weak,
        ceiling["test"],
        students,
        diagnostics,
        {s: len(v) for s, v in splits.items()},
        strong_test=fs["test"],
    )
    timing["scoring"] = time.perf_counter() - t
    timing["total"] = time.perf_counter() - t_start
    metrics["out"] = str(out)
    metrics["timing_s"] = {k2: round(v, 3) for k2, v in timing.items()}
    write_outputs(
        out,
        cfg,
        metrics,
        splits["test"],
        task.classes,
        weak["test"],
        ceiling["test"],
        {n: s["test"] for n, s in students.items()},
    )
    return metrics


def _parse_diag(value: Any) -> dict:
    return {} if value is None else json.loads(str(value))


def score(
    cfg: ExperimentConfig,
    task_name: str,
    classes: list[str],
    gold: np.ndarray,
    weak: dict[str, np.ndarray],
    ceiling: np.ndarray,
    students: dict[str, dict[str, np.ndarray]],
    diagnostics: dict[str, dict],
    n: dict[str, int],
    strong_test: np.ndarray | None = None,
) -> dict[str, Any]:
    """metrics.json's content: floor, ceiling, and each method with PGR and its CI, its
    misfit and gain (Charikar et al.) and pseudolabel correction / coverage expansion
    (Lang et al.); `expansion` uses the strong model's test features."""
    boot = {"n_resamples": cfg.bootstrap.n_resamples, "ci": cfg.bootstrap.ci, "seed": cfg.seed}
    weak_m = classification_metrics(gold, weak["test"])
    ceil_m = classification_metrics(gold, ceiling)
    weak_m["agreement_with_ceiling"] = agreement(weak["test"], ceiling)
    out: dict[str, Any] = {
        "task": task_name,
        "weak": cfg.weak.model,
        "strong": cfg.strong.model,
        "seed": cfg.seed,
        "classes": classes,
        "n": n,
        "weak_floor": weak_m,
        "strong_ceiling": ceil_m,
        "methods": {},
        "bootstrap": boot,
    }
    for name, s in students.items():
        p = s["test"]
        m = classification_metrics(gold, p)
        for metric in ("accuracy", "auroc"):
            b = bootstrap_pgr(
                gold,
                weak["test"],
                ceiling,
                p,
                metric=metric,
                n_resamples=boot["n_resamples"],
                ci=boot["ci"],
                seed=cfg.seed,
            )
            m[f"pgr_{metric}"] = b["pgr"]
            m[f"pgr_{metric}_ci"] = b["ci"]
        m["agreement_with_weak"] = agreement(p, weak["test"])
        if "train" in s:
            m["agreement_with_weak_train"] = agreement(s["train"], weak["strong_train"])
        m.update({f"diag_{k}": v for k, v in diagnostics.get(name, {}).items()})
        m["misfit"] = misfit_report(gold, weak["test"], p)
        if "train" in s:
            m["misfit"]["misfit_kl_train"] = misfit(s["train"], weak["strong_train"])
        m["coverage"] = coverage_report(gold, weak["test"], p)
        out["methods"][name] = m
    if strong_test is not None:
        # expansion depends on the weak labels and the strong features only: once per run
        covered = coverage_mask(weak["test"])
        est = expansion_estimate(strong_test, weak["test"].argmax(1), gold, covered)
        out["expansion"] = {k: (None if v != v else float(v)) for k, v in est.items()}
    return out
