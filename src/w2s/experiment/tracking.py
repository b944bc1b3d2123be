"""Optional experiment tracking: a finished run's resolved config (as parameters), its
metrics.json (flattened to scalar metrics) and its small files, logged to Weights & Biases
and/or MLflow. Off by default; `log: [wandb, mlflow]` in a config, or `--log` on
`w2s run` / `w2s sweep`, turns it on.

Nothing here imports wandb or mlflow until a run asks for them. Stores are local by
default, inside the run folder (or the sweep folder, shared by its runs): W&B runs
offline (`WANDB_MODE`, default `offline`) under `<root>/wandb`; MLflow logs to the SQLite
store `<root>/mlflow.db` with artifacts in `<root>/mlartifacts`, unless
`MLFLOW_TRACKING_URI` names another store. After logging, `tracking.json` in the run
folder says what went where, so a resumed sweep logs each finished run once.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import yaml

from w2s.cache import lock, write_json_atomic
from w2s.errors import TrackingError, UnknownNameError
from w2s.registry import Registry

RECORD = "tracking.json"
INSTALL = "pip install 'w2s[track]'"
ARTIFACTS = ("metrics.json", "config.yaml", "report.md", "plots/results.png", "predictions.parquet")
ARTIFACT_MAX_BYTES = 20 * 2**20  # files larger than this are not copied into the store
SKIPPED_METRICS = ("bootstrap", "dedup", "n", "seed")  # settings and counts: params


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """metrics.json's numbers as `a/b/c` keys: every finite number (booleans as 0/1),
    a two-number `*_ci` list as `*_ci_lo` and `*_ci_hi`; strings, nulls, NaNs and other
    lists are left out. Settings and counts (`bootstrap`, `dedup`, `n`, `seed`) are params."""
    out: dict[str, float] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if not key and k in SKIPPED_METRICS:
                    continue
                walk(v, f"{key}/{k}" if key else str(k))
        elif isinstance(node, bool):
            out[key] = float(node)
        elif isinstance(node, int | float):
            if math.isfinite(node):
                out[key] = float(node)
        elif isinstance(node, list) and key.endswith("_ci") and len(node) == 2:
            walk(node[0], f"{key}_lo")
            walk(node[1], f"{key}_hi")

    walk(metrics, "")
    return out


def flatten_params(config: dict[str, Any], metrics: dict[str, Any]) -> dict[str, str]:
    """The resolved config as dotted keys -> strings (lists and mappings in YAML flow
    style), with the run's split sizes, dedup counts and bootstrap settings."""
    out: dict[str, str] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, str | int | float | bool) or node is None:
            out[key] = str(node)
        else:
            flow = yaml.safe_dump(node, default_flow_style=True, sort_keys=False, width=10**6)
            out[key] = flow.strip()

    walk({k: v for k, v in config.items() if k != "log"}, "")
    for section in SKIPPED_METRICS:
        if isinstance(metrics.get(section), dict):
            walk(metrics[section], f"run.{section}")
    return out


class Tracker(ABC):
    """Logs one finished run somewhere; `package` is what must be importable."""

    name: ClassVar[str]
    package: ClassVar[str]

    def __init__(self, root: Path) -> None:
        self.root = root  # the default folder of local stores

    @classmethod
    def check(cls) -> None:
        """Raise a one-line `TrackingError` if the tracker's package is missing."""
        import importlib

        try:
            importlib.import_module(cls.package)
        except ImportError:
            raise TrackingError(
                f"--log {cls.name} needs the {cls.package} package: {INSTALL}"
            ) from None

    @abstractmethod
    def log(
        self, run: Path, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str]
    ) -> dict[str, str]:
        """Log one run; return where it went (ids, paths)."""


TRACKERS: Registry[type[Tracker]] = Registry("tracker")


def artifacts(run: Path) -> list[Path]:
    """The run's files worth copying into a store: results, config, report, plot,
    predictions (when under the size cap)."""
    paths = [run / name for name in ARTIFACTS]
    return [p for p in paths if p.is_file() and p.stat().st_size <= ARTIFACT_MAX_BYTES]


@TRACKERS.register
class WandbTracker(Tracker):
    """Weights & Biases: offline by default (`WANDB_MODE`), files under `<root>/wandb`
    (`WANDB_DIR` wins), project `WANDB_PROJECT` or `w2s`; the run's files are copied
    into the W&B run's `files/w2s/`."""

    name = "wandb"
    package = "wandb"

    def log(
        self, run: Path, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str]
    ) -> dict[str, str]:
        import wandb

        folder = Path(os.environ.get("WANDB_DIR") or self.root)
        folder.mkdir(parents=True, exist_ok=True)
        mode = os.environ.get("WANDB_MODE") or "offline"
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True)
        w = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or "w2s",
            name=run.name,
            dir=str(folder),
            mode=mode,
            config=params,
            tags=sorted(set(tags.values()))[:64],
            settings=settings,
            reinit="create_new",
        )
        try:
            w.log(metrics, step=0)  # history step 0 and the run's summary
            for path in artifacts(run):  # files in the run's folder are synced with it
                copy = Path(w.dir) / "w2s" / path.relative_to(run)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, copy)
            where = {"run_id": w.id, "mode": mode, "dir": str(Path(w.dir).parent)}
        finally:
            w.finish()
            wandb.teardown()  # stop wandb's service process: no process left behind
        return where


@TRACKERS.register
class MlflowTracker(Tracker):
    """MLflow: `MLFLOW_TRACKING_URI` if set, else SQLite at `<root>/mlflow.db` with
    artifacts in `<root>/mlartifacts`; experiment `MLFLOW_EXPERIMENT_NAME` or `w2s`."""

    name = "mlflow"
    package = "mlflow"

    def log(
        self, run: Path, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str]
    ) -> dict[str, str]:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        self.root.mkdir(parents=True, exist_ok=True)
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.root.resolve()}/mlflow.db"
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "w2s"
        for name_ in ("mlflow", "alembic"):  # table creation is not news to the user
            logging.getLogger(name_).setLevel(logging.WARNING)
        # one writer at a time per store: SQLite schema creation and experiment creation race
        with lock(self.root / ".mlflow"):
            client = MlflowClient(tracking_uri=uri)
            exp = client.get_experiment_by_name(name)
            if exp is None:
                location = (self.root.resolve() / "mlartifacts").as_uri()
                exp_id = client.create_experiment(name, artifact_location=location)
            else:
                exp_id = exp.experiment_id
            r = client.create_run(exp_id, run_name=run.name, tags=tags)
            run_id = r.info.run_id
            now = int(time.time() * 1000)
            items = [Param(k[:250], v[:6000]) for k, v in params.items()]
            for i in range(0, len(items), 100):
                client.log_batch(run_id, params=items[i : i + 100])
            values = [Metric(k, v, now, 0) for k, v in metrics.items()]
            for i in range(0, len(values), 1000):
                client.log_batch(run_id, metrics=values[i : i + 1000])
            for path in artifacts(run):
                sub = str(path.parent.relative_to(run)) if path.parent != run else None
                client.log_artifact(run_id, str(path), artifact_path=sub)
            client.set_terminated(run_id)
        return {"run_id": run_id, "experiment_id": str(exp_id), "tracking_uri": uri}


def check_trackers(names: Iterable[str]) -> list[type[Tracker]]:
    """The trackers `names` asks for, each known and importable (one-line errors)."""
    out = []
    for name in dict.fromkeys(names):
        try:
            tracker = TRACKERS.get(name)
        except UnknownNameError as err:  # one line listing the trackers
            raise TrackingError(str(err)) from None
        tracker.check()
        out.append(tracker)
    return out


def tracked(run: Path) -> dict[str, Any]:
    """What `tracking.json` says was logged for this run (empty if nothing)."""
    try:
        return json.loads((run / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def pending(names: Iterable[str], run: Path) -> list[str]:
    """The trackers of `names` this finished run has not been logged to yet."""
    done = tracked(run)
    return [n for n in dict.fromkeys(names) if n not in done]


def track_run(names: Iterable[str], run: Path, root: Path | None = None) -> dict[str, Any]:
    """Log the finished run in `run` to each tracker of `names` not yet logged to; local
    stores under `root` (default `<run>/tracking`). Records the result in tracking.json."""
    todo = pending(names, run)
    if not todo:
        return tracked(run)
    classes = check_trackers(todo)
    try:
        metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise TrackingError(f"cannot read the run in {run} to log it: {err}") from None
    params = flatten_params(config, metrics)
    values = flatten_metrics(metrics)
    tags = {k: str(metrics.get(k)) for k in ("kind", "task", "weak", "strong") if metrics.get(k)}
    record = tracked(run)
    store = root or run / "tracking"
    for cls in classes:
        try:
            record[cls.name] = cls(store).log(run, params, values, tags)
        except TrackingError:
            raise
        except Exception as err:  # the tracker's own errors, as one line
            line = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise TrackingError(f"logging {run} to {cls.name} failed: {line}") from None
        write_json_atomic(run / RECORD, record)
    return record
