"""Experiment tracking on real tiny runs: `--log wandb,mlflow` logs what metrics.json and
config.yaml hold, read back from W&B's offline run file and from MLflow's store; a sweep
logs each finished run once, also when resumed; importing w2s imports neither package;
a missing package or an unknown tracker is one error line before any work."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import error_lines
from w2s.experiment.tracking import flatten_metrics, flatten_params

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = [
    "--task", "sentiment", "--methods", "naive,logconf",
    "--weak", "minilm-l6", "--strong", "minilm-l6",
    "--set", "weak.max_length=6", "--set", "weak.dtype=float32", "--set", "strong.dtype=float32",
    "--set", "data.n_weak_train=60", "--set", "data.n_strong_train=200",
    "--set", "data.n_val=40", "--set", "data.n_test=200",
    "--set", "probe.epochs=10", "--set", "bootstrap.n_resamples=300",
]  # fmt: skip


def wandb_records(path: Path) -> list:
    """The protobuf records of a W&B offline run file (`run-<id>.wandb`): a 7-byte header,
    then LevelDB-log framing (32 KiB blocks; each record a 7-byte header, then data,
    split over blocks as first / middle / last pieces)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block, pos = path.read_bytes(), 32768, 7
    ident, magic, _ = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1
    out, parts = [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):  # full, or the last piece
            record = pb.Record()
            record.ParseFromString(parts)
            out.append(record)
            parts = b""
    return out


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def wandb_logged(run_dir: Path) -> tuple[dict, dict, dict]:
    """History (step 0), final summary and config of an offline W&B run."""
    (file,) = run_dir.glob("run-*.wandb")
    history, summary, config = {}, {}, {}
    for r in wandb_records(file):
        kind = r.WhichOneof("record_type")
        if kind == "history":
            history |= {_key(i): json.loads(i.value_json) for i in r.history.item}
        elif kind == "summary":
            summary |= {_key(i): json.loads(i.value_json) for i in r.summary.update}
        elif kind == "run":
            config |= {i.key: json.loads(i.value_json) for i in r.run.config.update}
    return history, summary, config


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, w2s_cli_module):
    out = tmp_path_factory.mktemp("track") / "run"
    proc = w2s_cli_module("run", *TINY, "--log", "wandb,mlflow", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


@pytest.fixture(scope="module")
def w2s_cli_module():
    def run(*args, timeout=900, env=None):
        return subprocess.run(
            [sys.executable, "-m", "w2s.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "W2S_QUIET": "1", **(env or {})},
        )

    return run


def test_mlflow_holds_what_metrics_json_holds(tracked_run):
    from mlflow.tracking import MlflowClient

    out, proc = tracked_run
    metrics = json.loads((out / "metrics.json").read_text())
    config = yaml.safe_load((out / "config.yaml").read_text())
    record = json.loads((out / "tracking.json").read_text())["mlflow"]
    assert record["tracking_uri"] == f"sqlite:///{out / 'tracking' / 'mlflow.db'}"
    assert f"logged to mlflow: run_id {record['run_id']}" in proc.stdout
    client = MlflowClient(tracking_uri=record["tracking_uri"])
    run = client.get_run(record["run_id"])
    flat = flatten_metrics(metrics)
    assert run.data.metrics == flat  # every number, bit for bit
    naive = metrics["methods"]["naive"]
    assert run.data.metrics["methods/naive/pgr_accuracy"] == naive["pgr_accuracy"]
    assert (
        run.data.metrics["methods/logconf/pgr_accuracy_ci_lo"]
        == (metrics["methods"]["logconf"]["pgr_accuracy_ci"][0])
    )
    assert run.data.metrics["weak_floor/accuracy"] == metrics["weak_floor"]["accuracy"]
    assert len(flat) > 100
    assert run.data.params == flatten_params(config, metrics)
    assert run.data.params["data.n_test"] == "200" and run.data.params["weak.max_length"] == "6"
    assert run.data.params["methods"].startswith("[{name: naive")
    assert run.data.tags["task"] == "sentiment" and run.info.run_name == "run"
    assert run.info.status == "FINISHED"
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "config.yaml", "report.md", "predictions.parquet", "plots"} <= files
    local = client.download_artifacts(run.info.run_id, "metrics.json", str(out.parent))
    assert Path(local).read_bytes() == (out / "metrics.json").read_bytes()


def test_wandb_offline_run_holds_what_metrics_json_holds(tracked_run):
    out, _ = tracked_run
    record = json.loads((out / "tracking.json").read_text())["wandb"]
    assert record["mode"] == "offline"
    run_dir = Path(record["dir"])
    assert run_dir.parent == out / "tracking" / "wandb"
    history, summary, config = wandb_logged(run_dir)
    metrics = json.loads((out / "metrics.json").read_text())
    flat = flatten_metrics(metrics)
    assert {k: history[k] for k in flat} == flat
    assert {k: summary[k] for k in flat} == flat
    assert history["methods/naive/pgr_auroc"] == metrics["methods"]["naive"]["pgr_auroc"]
    params = flatten_params(yaml.safe_load((out / "config.yaml").read_text()), metrics)
    assert {k: config[k] for k in params} == params
    copied = run_dir / "files" / "w2s"
    assert (copied / "metrics.json").read_bytes() == (out / "metrics.json").read_bytes()
    assert (copied / "plots" / "results.png").is_file()


def test_importing_w2s_imports_no_tracker():
    code = (
        "import sys, w2s, w2s.cli, w2s.experiment, w2s.experiment.tracking, w2s.report\n"
        "from w2s.experiment.sweep import run_sweep\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('wandb', 'mlflow')))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "log, blocked, message",
    [
        ("mlflow", "mlflow", "--log mlflow needs the mlflow package: pip install 'w2s[track]'"),
        ("wandb,mlflow", "wandb", "--log wandb needs the wandb package: pip install 'w2s[track]'"),
        ("mlflow,nope", "", "log: unknown tracker 'nope' (trackers: wandb, mlflow)"),
    ],
)
def test_tracker_problems_are_one_line_before_any_work(tmp_path, log, blocked, message):
    """A package missing (simulated: its import made to fail) or an unknown tracker."""
    out = tmp_path / "run"
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n" if blocked else "import sys\n"
    ) + "from w2s.cli import main; sys.argv = ['w2s'] + sys.argv[1:]; main()"
    cmd = [sys.executable, "-c", code, "run", *TINY, "--log", log, "--out", str(out)]
    env = {**os.environ, "W2S_QUIET": "1", "PYTHONPATH": str(SRC)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert not out.exists()  # failed before the run wrote anything


def _sweep(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    base = {
        "task": "sentiment",
        "weak": {"model": "minilm-l6", "dtype": "float32", "max_length": 6},
        "strong": {"model": "minilm-l6", "dtype": "float32"},
        "methods": ["naive"],
        "data": {"n_weak_train": 60, "n_strong_train": 100, "n_val": 40, "n_test": 100},
        "probe": {"epochs": 5},
        "bootstrap": {"n_resamples": 200},
    }
    file = tmp_path / "grid.yaml"
    file.write_text(yaml.safe_dump({"base": base, "grid": {"seed": [0, 1]}}))
    cmd = [sys.executable, "-m", "w2s.cli", "sweep", str(file), "--out", str(tmp_path / "s")]
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "W2S_QUIET": "1", "PYTHONPATH": path}
    return subprocess.run([*cmd, *extra], capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.slow  # three sweeps, each starting a worker process: about 50 s
def test_sweep_logs_each_finished_run_once(tmp_path):
    """A sweep run without --log, then with it (the finished runs are logged, not rerun,
    and keep their folders), then again (nothing logged twice)."""
    from mlflow.tracking import MlflowClient

    proc = _sweep(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "s"
    runs = sorted(p for p in out.iterdir() if p.name.startswith("seed-"))
    assert len(runs) == 2
    written = {p: (p / "metrics.json").stat().st_mtime_ns for p in runs}
    for _ in range(2):
        proc = _sweep(tmp_path, "--log", "mlflow")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert sorted(p for p in out.iterdir() if p.name.startswith("seed-")) == runs
        assert {p: (p / "metrics.json").stat().st_mtime_ns for p in runs} == written
        client = MlflowClient(tracking_uri=f"sqlite:///{out / 'tracking' / 'mlflow.db'}")
        exp = client.get_experiment_by_name("w2s")
        logged = client.search_runs([exp.experiment_id])
        assert sorted(r.info.run_name for r in logged) == [p.name for p in runs]
        for r in logged:
            metrics = json.loads((out / r.info.run_name / "metrics.json").read_text())
            assert r.data.metrics == flatten_metrics(metrics)
