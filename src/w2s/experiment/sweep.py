"""Sweeps: one file expands into many experiments, run by an executor into one folder.

A sweep file holds `base` (an experiment config, the keys of a `w2s run` file), `grid`
(dotted keys -> lists of values; or a list of such mappings: the union of their
products) and `runs` (a list of overrides, crossed with the grid), plus optional `out`,
`executor`, `max_parallel` and `resources` (`num_cpus`, `num_gpus` per Ray task).

Every run is validated before anything is written. Each gets a folder named by its
overrides and a hash of its config; finished runs are skipped, so a killed sweep resumes
where it stopped. The runs share one stage store (`<out>/.stages`), and `index.parquet` /
`index.csv` list every run's status and headline metrics, rewritten as runs finish.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, Field, ValidationError
from rich.markup import escape

from w2s.cache import atomic_path, check_out_dir, fingerprint, make_out_dir
from w2s.errors import W2SError
from w2s.experiment.config import ExperimentConfig, Strict, build_config, load_yaml
from w2s.experiment.executors import Job, make_executor
from w2s.experiment.outputs import GAP_MARK, fmt, is_finished_run
from w2s.experiment.tracking import check_trackers, pending
from w2s.progress import note, progress, warn

MODEL_SHORTHAND = ("weak", "strong")  # `weak: name` stands for `weak: {model: name}`
STATUSES = ("done", "failed", "pending")


class Resources(Strict):
    """What each run asks of a Ray cluster."""

    num_cpus: float = Field(1, gt=0)
    num_gpus: float = Field(0, ge=0)


class SweepFile(Strict):
    """A sweep file's keys (`grid` and `runs` are checked by `expand`)."""

    base: dict[str, Any] = Field(default_factory=dict)
    grid: Any = Field(default_factory=dict)
    runs: list[Any] | None = None
    out: str | None = None
    executor: str = "local"
    max_parallel: int | None = Field(None, ge=1)
    resources: Resources = Field(default_factory=Resources)


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its overrides of `base`, its config mapping and folder."""

    name: str
    overrides: dict[str, Any]
    raw: dict[str, Any]
    folder: Path


@dataclass
class SweepOutcome:
    """What a sweep left: its folder, its runs, the index, this invocation's failures."""

    out: Path
    runs: list[PlannedRun]
    index: pd.DataFrame
    failures: dict[str, str] = field(default_factory=dict)


# -- the sweep file ----------------------------------------------------------------------


def load_sweep(path: str | Path) -> SweepFile:
    """Read and check a sweep file's top level; errors are one line."""
    raw = load_yaml(path)
    if not raw:
        raise W2SError(f"sweep file {path} is empty (expected base:, grid: and/or runs:)")
    try:
        return SweepFile.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "sweep"
        if first["type"] == "extra_forbidden":
            keys = ", ".join(f"{k}:" for k in SweepFile.model_fields)
            raise W2SError(
                f"sweep file {path}: unknown key '{loc}' (a sweep file holds {keys}; "
                "experiment settings go under base:)"
            ) from None
        raise W2SError(f"sweep file {path}: {loc}: {first['msg']}") from None


def _section(annotation: Any) -> type[BaseModel] | None:
    """The config section (a pydantic model) a field holds, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            section = _section(arg)
            if section is not None:
                return section
    return None


def check_key(key: str, where: str) -> None:
    """A dotted key must name a setting of an experiment config (other than `out`)."""
    if key == "out":
        raise W2SError(f"{where}: out is set by the sweep (each run gets its own folder)")
    model: type[BaseModel] | None = ExperimentConfig
    scope = "an experiment config"
    for part in key.split("."):
        if model is None:
            raise W2SError(f"{where}: unknown key '{key}': {scope} has no sub-keys")
        if part not in model.model_fields:
            keys = ", ".join(k for k in model.model_fields if k != "out")
            raise W2SError(f"{where}: unknown key '{key}': {scope} has no '{part}' ({keys})")
        model, scope = _section(model.model_fields[part].annotation), f"'{part}'"


def expand(sweep: SweepFile) -> list[dict[str, Any]]:
    """Every run's overrides: the grid's product(s), each crossed with `runs`."""
    blocks = sweep.grid if isinstance(sweep.grid, list) else [sweep.grid]
    if not blocks:
        raise W2SError("grid: empty list (give a mapping of keys to lists of values)")
    points: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        where = f"grid[{i}]" if isinstance(sweep.grid, list) else "grid"
        if not isinstance(block, dict):
            raise W2SError(f"{where} must be a mapping of dotted keys to lists of values")
        for key, values in block.items():
            check_key(str(key), where)
            if not isinstance(values, list):
                raise W2SError(f"{where}.{key} must be a list of values, got {values!r}")
            if not values:
                raise W2SError(f"{where}.{key} is an empty list: give at least one value")
        combos = itertools.product(*block.values())
        points += [dict(zip(block, combo, strict=True)) for combo in combos]
    if sweep.runs is None:
        return points
    if not sweep.runs:
        raise W2SError("runs: empty list (give at least one mapping of overrides)")
    for i, extra in enumerate(sweep.runs):
        if not isinstance(extra, dict):
            raise W2SError(f"runs[{i}] must be a mapping of dotted keys to values")
        for key in extra:
            check_key(str(key), f"runs[{i}]")
    out = []
    for point in points:
        for i, extra in enumerate(sweep.runs):
            both = sorted(set(point) & set(extra))
            if both:
                raise W2SError(f"runs[{i}] sets '{both[0]}', which the grid sets too")
            out.append({**point, **extra})
    return out


def apply(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with each dotted key of `overrides` set."""
    tree = copy.deepcopy(base)
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            if part in MODEL_SHORTHAND and isinstance(node.get(part), str):
                node[part] = {"model": node[part]}
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise W2SError(f"{key}: base's '{part}' is not a section")
        node[leaf] = copy.deepcopy(value)
    return tree


# -- planning ----------------------------------------------------------------------------


def describe(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={cell(v)}" for k, v in overrides.items()) or "base"


def _short(value: Any) -> str:
    """A value in a folder name: lists joined by `+`, a mapping by its name or values."""
    if isinstance(value, list):
        return "+".join(_short(v) for v in value)
    if isinstance(value, dict):
        return str(value["name"]) if "name" in value else "-".join(map(_short, value.values()))
    return str(value)


def config_hash(cfg: ExperimentConfig) -> str:
    """A short hash of every setting that differs from its default (`out` aside, and
    `log`: where results are also logged does not change them)."""
    settings = cfg.model_dump(mode="json", exclude_defaults=True, exclude={"out", "log"})
    return fingerprint(settings, length=8)


def run_name(overrides: dict[str, Any], cfg: ExperimentConfig) -> str:
    """A readable, deterministic folder name: `key-value__...__<config hash>`."""
    parts = [f"{k.rsplit('.', 1)[-1]}-{_short(v)}"[:40] for k, v in overrides.items()]
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "_", "__".join(parts))[:120].strip("_.-") or "run"
    return f"{slug}__{config_hash(cfg)}"


def plan(sweep: SweepFile, out: Path) -> list[PlannedRun]:
    """Expand and validate every run (config, task, methods, folder) before any work."""
    from w2s.data.registry import resolve_task
    from w2s.experiment.runner import PROTOCOLS

    if "out" in sweep.base:
        raise W2SError("base.out: the sweep names each run's folder; set the sweep's out:")
    points = expand(sweep)
    tasks: dict[str, Any] = {}
    runs: dict[str, PlannedRun] = {}
    for i, overrides in enumerate(points):
        where = f"sweep run {i + 1} of {len(points)} ({describe(overrides)})"
        try:
            raw = apply(sweep.base, overrides)
            name = run_name(overrides, build_config(raw))
            raw["out"] = str(out / name)
            cfg = build_config(raw)
            if cfg.task not in tasks:
                tasks[cfg.task] = resolve_task(cfg.task)
            task, spec = tasks[cfg.task]
            PROTOCOLS.get(task.kind)(cfg, task, spec)  # validates; does no work
        except W2SError as err:
            raise W2SError(f"{where}: {err}") from None
        if name in runs:
            raise W2SError(f"{where} repeats run ({describe(runs[name].overrides)})")
        runs[name] = PlannedRun(name, overrides, raw, out / name)
    return list(runs.values())


def job(run: PlannedRun, out: Path) -> Job:
    return {
        "name": run.name,
        "tracking": str(out / "tracking"),
        "raw": run.raw,
        "folder": str(run.folder),
        "stages": str(out / ".stages"),
        "lock": str(out / ".locks" / run.name),
        "log": str(out / "logs" / f"{run.name}.log"),
    }


# -- the index ---------------------------------------------------------------------------


def cell(value: Any) -> Any:
    """A grid value as an index cell: scalars as they are, the rest in YAML flow style."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """Floor, ceiling and each method on the headline metric (accuracy for classification,
    the first grader's for generation), each method's PGR with its CI."""
    names = metrics.get("metrics") or ["accuracy"]
    metric = "accuracy" if metrics.get("kind") == "classification" else names[0]
    row: dict[str, Any] = {
        "metric": metric,
        "weak_floor": metrics["weak_floor"].get(metric),
        "strong_ceiling": metrics["strong_ceiling"].get(metric),
        "gap_significant": metrics.get("gap", {}).get(metric, {}).get("significant"),
    }
    for name, m in metrics["methods"].items():
        lo, hi = m.get(f"pgr_{metric}_ci") or (None, None)
        row |= {name: m.get(metric), f"{name}_pgr": m.get(f"pgr_{metric}")}
        row |= {f"{name}_pgr_lo": lo, f"{name}_pgr_hi": hi}
    row["seconds"] = metrics.get("timing_s", {}).get("total")
    return row


def index_frame(
    runs: list[PlannedRun], failures: dict[str, str], read: dict[str, dict] | None = None
) -> pd.DataFrame:
    """One row per run: folder, status, error, the grid's values, headline metrics
    (`read` keeps finished runs' headlines, so each metrics.json is read once)."""
    read = {} if read is None else read
    keys = list(dict.fromkeys(k for r in runs for k in r.overrides))
    rows = []
    for r in runs:
        row: dict[str, Any] = {"run": r.name, "status": "pending", "error": failures.get(r.name)}
        row |= {k: cell(r.overrides.get(k)) for k in keys}
        if r.name in read or is_finished_run(r.folder):
            if r.name not in read:
                text = (r.folder / "metrics.json").read_text(encoding="utf-8")
                read[r.name] = headline(json.loads(text))
            row |= {"status": "done", "error": None, **read[r.name]}
        elif r.name in failures:
            row["status"] = "failed"
        rows.append(row)
    frame = pd.DataFrame(rows)
    for k in keys:  # parquet wants one type per column
        if len({type(v) for v in frame[k] if v is not None}) > 1:
            frame[k] = frame[k].map(lambda v: None if v is None else str(v))
    return frame


def write_index(out: Path, frame: pd.DataFrame) -> None:
    """index.parquet and index.csv, each written atomically."""
    with atomic_path(out / "index.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    with atomic_path(out / "index.csv") as tmp:
        frame.to_csv(tmp, index=False)


def summary_table(outcome: SweepOutcome) -> tuple[str, list[str], list[list[str]], list[str]]:
    """Title, header, rows (rich-escaped) and footnotes of the sweep's results table: a
    run is named by its grid values (in short form; index.csv has the folder names)."""
    frame = outcome.index
    keys = list(dict.fromkeys(k for r in outcome.runs for k in r.overrides))
    methods = [c[: -len("_pgr")] for c in frame.columns if c.endswith("_pgr")]
    header = [k.rsplit(".", 1)[-1] for k in keys] or ["run"]
    header += ["status", "weak floor", "ceiling"]
    header += [h for m in methods for h in (m, f"{m} PGR [CI]")]
    rows = []
    for run, row in zip(outcome.runs, frame.to_dict("records"), strict=True):
        cells = [_short(run.overrides[k]) if k in run.overrides else "" for k in keys]
        cells = (cells or [run.name]) + [row["status"]]
        cells += [fmt(row.get("weak_floor")), fmt(row.get("strong_ceiling"))]
        for m in methods:
            cells += [fmt(row.get(m)), _pgr_cell(row, m)]
        rows.append([escape(c) for c in cells])
    counts = frame["status"].value_counts().to_dict()
    title = f"sweep {outcome.out}: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
    notes = [
        f"failed: {r['run']}: {r['error']}"
        for r in frame.to_dict("records")
        if isinstance(r["error"], str) and r["error"]
    ]
    metrics = sorted({str(m) for m in frame.get("metric", pd.Series(dtype=str)).dropna()})
    if metrics:
        notes.insert(0, f"metric: {', '.join(metrics)} on test; PGR with its bootstrap CI")
    return title, header, rows, notes


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _pgr_cell(row: dict[str, Any], method: str) -> str:
    if _text(row.get(f"{method}_pgr")) == "":
        return ""
    if row.get("gap_significant") is False:
        return f"no gap{GAP_MARK}"
    lo, hi = row.get(f"{method}_pgr_lo"), row.get(f"{method}_pgr_hi")
    return f"{fmt(row[f'{method}_pgr'], True)} [{fmt(lo, True)}, {fmt(hi, True)}]"


# -- running -----------------------------------------------------------------------------


def run_sweep(
    path: str | Path,
    executor: str | None = None,
    address: str | None = None,
    max_parallel: int | None = None,
    out: str | Path | None = None,
    log: str | list[str] | None = None,
) -> SweepOutcome:
    """Validate every run, then run those not finished (and log finished ones not yet
    logged to the trackers asked for); the index follows each result. `log` overrides
    `base.log`."""
    sweep = load_sweep(path)
    if log is not None:
        sweep.base["log"] = log
    ex = make_executor(
        executor or sweep.executor,
        sweep.max_parallel if max_parallel is None else max_parallel,
        address,
        sweep.resources.num_cpus,
        sweep.resources.num_gpus,
    )
    folder = Path(out or sweep.out or Path("runs") / Path(path).stem)
    check_out_dir(folder)
    folder = folder.resolve()
    runs = plan(sweep, folder)
    logs = {r.name: build_config(r.raw).log for r in runs}
    check_trackers(n for names in logs.values() for n in names)  # installed? before any work
    ex.start()
    try:
        make_out_dir(folder)
        with atomic_path(folder / "sweep.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(sweep.model_dump(), sort_keys=False))
        failures: dict[str, str] = {}
        read: dict[str, dict] = {}
        todo = [r for r in runs if not is_finished_run(r.folder)]
        note(f"sweep {folder}: {len(runs)} runs, {len(runs) - len(todo)} finished (skipped)")
        todo += [  # finished, but not yet logged to a tracker asked for now
            r for r in runs if is_finished_run(r.folder) and pending(logs[r.name], r.folder)
        ]
        write_index(folder, index_frame(runs, failures, read))
        with progress() as bar:
            task = bar.add_task("sweep", total=len(todo))
            for res in ex.run([job(r, folder) for r in todo]):
                if res["status"] == "failed":
                    failures[res["name"]] = res["error"]
                    warn(f"run {res['name']} failed: {res['error']}")
                else:
                    note(f"[green]{res['status']}[/green] {res['name']} ({res['seconds']:.1f} s)")
                write_index(folder, index_frame(runs, failures, read))
                bar.advance(task)
    finally:
        ex.close()
    index = index_frame(runs, failures, read)
    write_index(folder, index)
    return SweepOutcome(folder, runs, index, failures)
