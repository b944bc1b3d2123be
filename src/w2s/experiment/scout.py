"""`w2s scout`: which tasks have a gap worth recovering for a weak -> strong pair.

For each candidate task the weak floor and the strong ceiling are trained exactly as a
`w2s run` with the same seed, split sizes and probe settings trains them (the same
splits, features, probes and stage seeds), on small splits, and scored on the same gold
test set; the tasks are ranked by the ceiling's accuracy advantage with a paired
bootstrap CI. Cheap first: each task is first scored on the first half of every split,
and a task whose gap CI there lies wholly below `min_gap` stops early ("clearly no
gap"). Each task's result is cached under a key of everything it depends on (both
encoders, split contents, probe, seed, sizes, rule, bootstrap), and features come from
the shared feature cache, so a repeated scout only reloads tasks.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from w2s.analysis.metrics import classification_metrics
from w2s.analysis.pgr import bootstrap_metric_difference
from w2s.cache import cache_dir, fingerprint, write_json_atomic
from w2s.data import TASKS, Task, deduplicate, load_task, split_task
from w2s.data.bigbench import catalogue, prefetch
from w2s.data.registry import parse_spec
from w2s.errors import DataError, UnknownNameError, W2SError
from w2s.experiment.classification import encoder_for
from w2s.experiment.config import BootstrapConfig, ModelConfig, ProbeConfig, Strict
from w2s.experiment.protocol import split_key
from w2s.models.encoders import Encoder
from w2s.models.features import features
from w2s.models.heads import PROBE_VERSION, Probe
from w2s.progress import note
from w2s.seeds import derive_seed

SCOUT_VERSION = 1  # bump when what a task's result holds or how it is computed changes
GAP, SMALL, NO_GAP, EARLY, SKIPPED = "gap", "small gap", "no gap", "no gap (early stop)", "skipped"


class ScoutSettings(Strict):
    """What a scout does; everything but `tasks`, `top` and `out` is part of each task's
    cache key."""

    weak: str
    strong: str
    tasks: str = "*"
    top: int | None = Field(None, gt=0)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    n_train: int = Field(200, gt=0)  # each of weak_train and strong_train
    n_val: int = Field(100, gt=0)
    n_test: int = Field(400, gt=1)
    min_gap: float = Field(0.03, ge=0, lt=1)
    max_classes: int = Field(4, ge=2)
    max_chars: int = Field(1500, gt=0)
    dtype: str | None = None  # of both models' inference; None: the run's default
    probe: ProbeConfig = ProbeConfig()
    bootstrap: BootstrapConfig = BootstrapConfig()
    out: Path | None = None

    def sizes(self) -> dict[str, int]:
        n = self.n_train
        return {"weak_train": n, "strong_train": n, "val": self.n_val, "test": self.n_test}


# -- candidates ------------------------------------------------------------------------------


def bigbench_candidates(settings: ScoutSettings) -> pd.DataFrame:
    """BIG-bench tasks a scout can use: multiple choice, at most `max_classes` classes
    when the choices are fixed (per-item choices are binarised), enough examples for the
    splits, and at most `max_chars` characters per example on average."""
    cat = catalogue().copy()
    cat["n"] = pd.to_numeric(cat["n_examples"], errors="coerce").fillna(0).astype(int)
    kind = cat["kind"].astype(str).str.split(" ").str[0]
    mc = kind.str.startswith("mc")
    k = pd.to_numeric(kind.str[2:].where(mc), errors="coerce").fillna(0).astype(int)
    fixed = cat["kind"].astype(str).str.contains("fixed:")
    rows_needed = sum(settings.sizes().values())
    rows = np.where(fixed, cat["n"], 2 * cat["n"])  # binarised: two rows per question
    chars = pd.to_numeric(cat["bytes"], errors="coerce").fillna(0) / cat["n"].clip(lower=1)
    keep = mc & (~fixed | (k <= settings.max_classes)) & (rows >= rows_needed)
    keep &= chars <= settings.max_chars
    return cat[keep].reset_index(drop=True)


def resolve_candidates(settings: ScoutSettings) -> list[str]:
    """Task specs named by `settings.tasks`: comma-separated items, each a glob over the
    BIG-bench candidates (`multiemo/*_en`, `*fallac*`) or a task spec (an alias, or
    `bigbench:`, `file:`, `hf:`). Raises `W2SError` when nothing matches."""
    items = [i.strip() for i in settings.tasks.split(",") if i.strip()]
    if not items:
        raise W2SError("--tasks is empty: give a glob (e.g. '*') or task specs")
    names = bigbench_candidates(settings)["task"].tolist()
    specs: list[str] = []
    for item in items:
        if ":" in item or item in TASKS:
            source, name, _ = parse_spec(item)
            if source == "bigbench" and name not in set(catalogue()["task"]):
                raise UnknownNameError(f"unknown BIG-bench task '{name}' in --tasks")
            specs.append(item)
            continue
        matched = [f"bigbench:{n}" for n in names if fnmatch.fnmatchcase(n, item)]
        if not matched:
            raise W2SError(
                f"no BIG-bench classification task matches '{item}' (of {len(names)} that "
                f"fit the size filter: >= {sum(settings.sizes().values())} rows, <= "
                f"{settings.max_classes} fixed classes, <= {settings.max_chars} chars per "
                "example); see `w2s list tasks`"
            )
        specs.extend(matched)
    return list(dict.fromkeys(specs))


# -- one task --------------------------------------------------------------------------------


class Scout:
    """A scout over tasks with one pair of encoders; `run(specs)` returns one row per
    task. `tasks` maps a spec to an in-memory `Task` (tests, notebooks) instead of
    loading it."""

    def __init__(self, settings: ScoutSettings, root: Path | None = None) -> None:
        check_pair(settings)
        self.settings = settings
        self.root = root or cache_dir() / "scout"
        dtype = {"dtype": settings.dtype} if settings.dtype else {}
        self.weak = encoder_for(ModelConfig(model=settings.weak, **dtype))
        self.strong = encoder_for(ModelConfig(model=settings.strong, **dtype))
        if self.weak.key == self.strong.key:
            raise W2SError(
                f"weak '{settings.weak}' and strong '{settings.strong}' are the same model"
            )

    def run(
        self, specs: list[str], tasks: dict[str, Task] | None = None, log: Callable = note
    ) -> list[dict[str, Any]]:
        tasks = tasks or {}
        bigbench = [s.split(":", 1)[1] for s in specs if s.startswith("bigbench:")]
        if bigbench:
            prefetch([n.split("?")[0] for n in bigbench])  # one pass over the archive
        rows = []
        for i, spec in enumerate(specs, 1):
            row = self.task_row(spec, tasks.get(spec))
            rows.append(row)
            log(f"[{i}/{len(specs)}] {spec}: {describe(row)}")
        return rank(rows)

    def task_row(self, spec: str, task: Task | None = None) -> dict[str, Any]:
        """The scout's result for one task: from the cache when its key is there."""
        base = {"task": spec}
        try:
            task = task if task is not None else load_task(spec)
            if task.kind != "classification":
                return {**base, "status": SKIPPED, "reason": f"a {task.kind} task"}
            task, _ = deduplicate(task)
            splits = split_task(task, self.settings.sizes(), self.settings.seed)
        except DataError as err:
            return {**base, "status": SKIPPED, "reason": str(err)}
        path = self.root / f"{self.key(splits)}.json"
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            return {**saved, **base, "cached": True}
        start = time.perf_counter()
        row = {**base, "n_classes": task.n_classes, **self.evaluate(splits, task.n_classes)}
        row["seconds"] = round(time.perf_counter() - start, 2)
        write_json_atomic(path, row)
        return {**row, "cached": False}

    def key(self, splits: dict[str, pd.DataFrame]) -> str:
        s = self.settings
        return fingerprint(
            SCOUT_VERSION,
            PROBE_VERSION,
            self.weak.key,
            self.strong.key,
            s.probe.model_dump(),
            s.bootstrap.model_dump(),
            s.seed,
            s.min_gap,
            split_key(splits, ("id", "text", "label")),
            length=24,
        )

    def evaluate(self, splits: dict[str, pd.DataFrame], n_classes: int) -> dict[str, Any]:
        """Floor and ceiling on the first half of each split; if the gap is clearly below
        `min_gap` there, stop; else on the whole splits."""
        half = {k: df.iloc[: (len(df) + 1) // 2] for k, df in splits.items()}
        first = self.score(half, n_classes)
        if first["gap_hi"] < self.settings.min_gap:
            return {**first, "status": EARLY, "stage": "half"}
        full = self.score(splits, n_classes)
        return {**full, "status": status(full["gap_lo"], self.settings.min_gap), "stage": "full"}

    def score(self, splits: dict[str, pd.DataFrame], n_classes: int) -> dict[str, Any]:
        s = self.settings
        text = {k: df["text"].tolist() for k, df in splits.items()}
        gold = {k: df["label"].to_numpy() for k, df in splits.items()}
        floor = self.reference(self.weak, "weak_train", "weak_floor", text, gold, n_classes)
        ceiling = self.reference(
            self.strong, "strong_train", "strong_ceiling", text, gold, n_classes
        )
        d = bootstrap_metric_difference(
            gold["test"],
            ceiling,
            floor,
            metric="accuracy",
            n_resamples=s.bootstrap.n_resamples,
            ci=s.bootstrap.ci,
            seed=derive_seed(s.seed, "bootstrap"),
        )
        f, c = (
            classification_metrics(gold["test"], floor),
            classification_metrics(gold["test"], ceiling),
        )
        return {
            "gap": d["diff"],
            "gap_lo": d["ci"][0],
            "gap_hi": d["ci"][1],
            "floor_accuracy": f["accuracy"],
            "ceiling_accuracy": c["accuracy"],
            "floor_auroc": f["auroc"],
            "ceiling_auroc": c["auroc"],
            **{f"n_{k}": len(v) for k, v in splits.items()},
        }

    def reference(self, encoder: Encoder, train: str, stage: str, text, gold, n_classes: int):
        """A gold-trained probe's test probabilities, as the protocol trains the floor
        (`weak_floor`, on weak_train) and the ceiling (`strong_ceiling`, on strong_train):
        selected on gold val, seeded by the stage's name."""
        x = {k: features(encoder, text[k]) for k in (train, "val", "test")}
        probe = Probe(
            n_classes=n_classes,
            seed=derive_seed(self.settings.seed, stage),
            **self.settings.probe.model_dump(),
        )
        probe.fit(x[train], gold[train], X_val=x["val"], y_val=gold["val"])
        return probe.predict_proba(x["test"])


# -- ranking ----------------------------------------------------------------------------------


def status(gap_lo: float, min_gap: float) -> str:
    """`gap` when the CI's lower end clears `min_gap`, `small gap` when it clears 0 only,
    else `no gap`."""
    if gap_lo > min_gap:
        return GAP
    return SMALL if gap_lo > 0 else NO_GAP


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scored tasks by gap (largest first; ties by the CI's lower end), then skipped ones;
    each scored row gets its `rank`."""
    scored = [r for r in rows if r["status"] != SKIPPED]
    scored.sort(key=lambda r: (-r["gap"], -r["gap_lo"], r["task"]))
    for i, r in enumerate(scored, 1):
        r["rank"] = i
    return scored + [r for r in rows if r["status"] == SKIPPED]


def describe(row: dict[str, Any]) -> str:
    if row["status"] == SKIPPED:
        return f"skipped ({row.get('reason', '')})"
    cached = ", cached" if row.get("cached") else ""
    return (
        f"floor {row['floor_accuracy']:.3f}, ceiling {row['ceiling_accuracy']:.3f}, gap "
        f"{row['gap']:+.3f} [{row['gap_lo']:+.3f}, {row['gap_hi']:+.3f}]: {row['status']}{cached}"
    )


def check_pair(settings: ScoutSettings) -> None:
    """The same model named as weak and strong has no gap to find: a one-line error."""
    if settings.weak.strip() == settings.strong.strip():
        raise W2SError(f"weak and strong are the same model ('{settings.weak}'): no gap to find")


def run_scout(settings: ScoutSettings, tasks: dict[str, Task] | None = None) -> list[dict]:
    """Resolve the candidates (or take `tasks`), scout them, return the ranked rows."""
    check_pair(settings)
    specs = list(tasks) if tasks else resolve_candidates(settings)
    return Scout(settings).run(specs, tasks)
