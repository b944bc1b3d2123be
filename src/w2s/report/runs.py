"""Finding the runs a report covers: run folders, sweep folders (their finished runs) and
folders of runs; unfinished or damaged runs are skipped with a reason, never read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from w2s.errors import ReportError
from w2s.experiment.outputs import INCOMPLETE, in_distribution_rows, is_finished_run

REQUIRED = ("kind", "task", "weak", "strong", "weak_floor", "strong_ceiling", "methods")


@dataclass
class Run:
    """One finished run: its folder, metrics.json, config.yaml, and a display label."""

    path: Path
    metrics: dict[str, Any]
    config: dict[str, Any]
    label: str = ""

    @property
    def kind(self) -> str:
        return str(self.metrics["kind"])

    @property
    def task(self) -> str:
        return str(self.metrics["task"])

    @property
    def pair(self) -> str:
        return f"{self.metrics['weak']} → {self.metrics['strong']}"

    @cached_property
    def predictions(self) -> pd.DataFrame | None:
        """predictions.parquet's test rows (a run with held-out domains also has ood_test
        rows, marked in `split`; the report reads OOD results from metrics.json), or None
        if it is missing or unreadable."""
        try:
            pred = pd.read_parquet(self.path / "predictions.parquet")
        except (OSError, ValueError):
            return None
        return in_distribution_rows(pred)


@dataclass
class Collected:
    """The finished runs found, and what was skipped and why (one line each)."""

    runs: list[Run] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _is_run_like(folder: Path) -> bool:
    """A folder that is (or was meant to be) a run directory."""
    return any((folder / n).exists() for n in ("metrics.json", "config.yaml", INCOMPLETE))


def _load(folder: Path) -> Run | str:
    """A finished run, or the reason it cannot be reported."""
    if not is_finished_run(folder):
        return f"{folder}: not finished (.incomplete: the run died or is still writing)"
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        config_file = folder / "config.yaml"
        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0][:120]
        return f"{folder}: metrics.json or config.yaml is damaged ({reason})"
    if not isinstance(metrics, dict) or any(k not in metrics for k in REQUIRED):
        return f"{folder}: metrics.json lacks the keys of a run ({', '.join(REQUIRED)})"
    return Run(folder, metrics, config if isinstance(config, dict) else {})


def _index_note(folder: Path) -> str | None:
    """For a sweep folder: how many of its indexed runs are not done."""
    index = folder / "index.parquet"
    if not index.is_file():
        return None
    try:
        status = pd.read_parquet(index, columns=["status"])["status"]
    except (OSError, ValueError, KeyError):
        return None
    open_ = status[status != "done"]
    if open_.empty:
        return None
    counts = ", ".join(f"{n} {s}" for s, n in open_.value_counts().items())
    return f"{folder}: {len(open_)} of {len(status)} sweep runs are not finished ({counts})"


def collect_runs(inputs: list[Path]) -> Collected:
    """Expand `inputs` (run folders, sweep folders, folders holding runs) into finished
    runs, each once, in the order given (a folder's runs by name). A missing input or no
    finished run at all is a `ReportError`."""
    if not inputs:
        raise ReportError("no runs given: name run folders or sweep folders")
    out = Collected()
    seen: set[Path] = set()
    for given in inputs:
        if not given.exists():
            raise ReportError(f"no such run or sweep folder: {given}")
        if not given.is_dir():
            raise ReportError(f"{given} is a file, not a run or sweep folder")
        if _is_run_like(given):
            folders = [given]
        else:
            folders = sorted(p for p in given.iterdir() if p.is_dir() and _is_run_like(p))
            if not folders:
                raise ReportError(
                    f"{given} is not a run folder and holds none (give run or sweep folders)"
                )
            note = _index_note(given)
            if note:
                out.skipped.append(note)
        for folder in folders:
            key = folder.resolve()
            if key in seen:
                continue
            seen.add(key)
            loaded = _load(folder)
            if isinstance(loaded, str):
                out.skipped.append(loaded)
            else:
                out.runs.append(loaded)
    if not out.runs:
        where = ", ".join(str(p) for p in inputs)
        raise ReportError(f"no finished run in {where} ({len(out.skipped)} skipped)")
    label_runs(out.runs)
    return out


def _flat(tree: Any, prefix: str = "") -> dict[str, str]:
    """A config as dotted keys -> compact values."""
    if isinstance(tree, dict):
        out: dict[str, str] = {}
        for k, v in tree.items():
            out |= _flat(v, f"{prefix}{k}.")
        return out
    if isinstance(tree, list) and all(isinstance(v, dict) and "name" in v for v in tree):
        return {prefix[:-1]: "+".join(str(v["name"]) for v in tree)}  # methods: names only
    return {prefix[:-1]: str(tree)}


def _difference(runs: list[Run]) -> list[str]:
    """For runs that look alike: what tells each apart (the config keys whose values
    differ among them, at most two), else its folder name."""
    flats = [_flat({k: v for k, v in r.config.items() if k not in ("out", "log")}) for r in runs]
    keys = sorted({k for f in flats for k in f})
    differ = [k for k in keys if len({f.get(k) for f in flats}) > 1][:2]
    parts = [", ".join(f"{k.rsplit('.', 1)[-1]}={f.get(k, '-')}" for k in differ) for f in flats]
    if not differ or len(set(parts)) < len(parts):
        return [r.path.name for r in runs]
    return parts


def seed_groups(runs: list[Run], skipped: list[str] | None = None) -> list[list[Run]]:
    """Runs of one experiment repeated over seeds: groups of two or more runs whose saved
    configs agree on everything but `seed`, `out` and `log`, one run per seed, in seed
    order. A later run with the same config and seed as an earlier one is left out of its
    group, and said so in `skipped`."""
    groups: dict[str, dict[Any, Run]] = {}
    for r in runs:
        same = {k: v for k, v in r.config.items() if k not in ("seed", "out", "log")}
        if not same:  # a run without its config cannot be matched
            continue
        key = json.dumps(same, sort_keys=True, default=str)
        by_seed = groups.setdefault(key, {})
        seed = r.metrics.get("seed")
        if seed in by_seed:
            if skipped is not None:
                skipped.append(
                    f"{r.path}: same config and seed {seed} as {by_seed[seed].path}; "
                    "left out of the pooled seeds"
                )
            continue
        by_seed[seed] = r
    return [
        [by_seed[s] for s in sorted(by_seed, key=lambda s: (s is None, s or 0))]
        for by_seed in groups.values()
        if len(by_seed) > 1
    ]


def label_runs(runs: list[Run]) -> None:
    """Short, unique labels: `weak → strong`, plus the seed where seeds differ, plus what
    else differs (config values, else the folder name) where runs of a task look alike."""
    seeds = {r.metrics.get("seed") for r in runs}
    for r in runs:
        r.label = r.pair + (f", seed {r.metrics.get('seed')}" if len(seeds) > 1 else "")
    by_key: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        by_key.setdefault((r.task, r.label), []).append(r)
    for same in by_key.values():
        if len(same) > 1:
            for r, extra in zip(same, _difference(same), strict=True):
                r.label += f" [{extra}]"
