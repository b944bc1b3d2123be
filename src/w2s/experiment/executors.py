"""Where a sweep's runs execute: `local` (a pool of worker processes on this machine) or
`ray` (Ray tasks on a cluster). Both run each job through `run_job`, which holds the run's
lock, skips a run that is already finished, and reports a failure as one line instead of
raising, so one run's crash never ends the sweep.

A job is a plain dict: `name`, `raw` (the run's config mapping, `out` set), `folder`,
`stages` (the shared stage store), `lock`, `log` and `tracking` (the trackers' local
stores, for runs whose config has `log:`) (absolute paths). A result is a dict:
`name`, `status` (done, failed or skipped), `error` (one line or None), `seconds`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from w2s.cache import lock
from w2s.errors import W2SError

Job = dict[str, Any]
Result = dict[str, Any]
EXECUTORS = ("local", "ray")
# what a worker needs to see the same code, caches and settings as the sweep
PASSED_ENV_PREFIXES = ("W2S_", "HF_", "TRANSFORMERS_", "OMP_", "MKL_")


def result(job: Job, status: str, error: str | None, start: float) -> Result:
    return {
        "name": job["name"],
        "status": status,
        "error": error,
        "seconds": round(time.perf_counter() - start, 3),
    }


def run_job(job: Job) -> Result:
    """Run one sweep job in this process, under its run lock; never raises for a failed
    run (KeyboardInterrupt aside)."""
    from w2s.experiment.config import build_config
    from w2s.experiment.outputs import is_finished_run
    from w2s.experiment.runner import make_protocol
    from w2s.experiment.tracking import track_run

    start = time.perf_counter()
    folder = Path(job["folder"])
    with lock(Path(job["lock"])):  # a worker left over from a killed sweep may hold it
        status = "skipped" if is_finished_run(folder) else "done"
        try:
            cfg = build_config(job["raw"])
            if status == "done":
                make_protocol(cfg, shared_stages=Path(job["stages"])).run()
            if cfg.log:
                tracking_root = job.get("tracking")
                track_run(cfg.log, folder, Path(tracking_root) if tracking_root else None)
        except W2SError as err:
            return result(job, "failed", str(err), start)
        except Exception as err:  # a crash of one run must not end the sweep
            traceback.print_exc()
            line = (str(err).strip().splitlines() or [""])[0]
            return result(job, "failed", f"{type(err).__name__}: {line}".rstrip(": "), start)
    return result(job, status, None, start)


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now().isoformat(timespec='seconds')} pid {os.getpid()}\n")
            log.flush()
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def run_logged(job: Job) -> Result:
    """`run_job` with the run's output in its log file."""
    with output_to(Path(job["log"])):
        return run_job(job)


def worker_env(threads: int | None = None) -> dict[str, str]:
    """The environment of a worker: this one, with the w2s being run first on the path
    and, for several workers on one machine, `threads` threads each."""
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the w2s package
    given = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths = [root, *(str(Path(p).resolve()) for p in given)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    for var in ("W2S_CACHE", "W2S_DOWNLOADS"):
        if env.get(var):
            env[var] = str(Path(env[var]).expanduser().resolve())
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, str(threads))
    return env


class Executor(ABC):
    """Runs jobs; `start` connects (before the sweep writes anything), `run` yields one
    result per job as they finish, `close` releases what `start` took."""

    def start(self) -> None:  # noqa: B027  (optional hook)
        """Connect or check what the executor needs."""

    @abstractmethod
    def run(self, jobs: list[Job]) -> Iterator[Result]:
        """One result per job, in the order they finish."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release what `start` took."""


class LocalExecutor(Executor):
    """`max_parallel` long-lived worker processes (`python -m w2s.experiment.executors`)
    fed one job at a time over a pipe; a worker that dies fails only its own job and is
    replaced. Workers share this process's process group, so killing the group stops all."""

    def __init__(self, max_parallel: int = 1) -> None:
        self.max_parallel = max_parallel
        cpus = os.cpu_count() or 1
        self.env = worker_env(max(1, cpus // max_parallel) if max_parallel > 1 else None)

    def run(self, jobs: list[Job]) -> Iterator[Result]:
        todo: queue.Queue[Job] = queue.Queue()
        for job in jobs:
            todo.put(job)
        done: queue.Queue[Result] = queue.Queue()
        for _ in range(min(self.max_parallel, len(jobs))):
            threading.Thread(target=self._drive, args=(todo, done), daemon=True).start()
        for _ in jobs:
            yield done.get()

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "w2s.experiment.executors"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def _drive(self, todo: queue.Queue[Job], done: queue.Queue[Result]) -> None:
        """One worker's feeder thread: jobs in, results out, a dead worker replaced."""
        worker: subprocess.Popen | None = None
        try:
            while True:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                start = time.perf_counter()
                try:
                    if worker is None or worker.poll() is not None:  # none yet, or died idle
                        worker = None
                        worker = self._spawn()
                    worker.stdin.write(json.dumps(job, default=str) + "\n")
                    worker.stdin.flush()
                    line = worker.stdout.readline()
                    if line:
                        done.put(json.loads(line))
                        continue
                except (OSError, ValueError):  # a broken pipe or a garbled line: it died
                    pass
                code = worker.wait() if worker is not None else None
                worker = None
                why = f"worker process died ({describe_exit(code)}); log: {job['log']}"
                done.put(result(job, "failed", why, start))
        finally:
            if worker is not None:
                with contextlib.suppress(OSError):
                    worker.stdin.close()
                worker.wait()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "could not start"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class RayExecutor(Executor):
    """Each job a Ray task with `num_cpus`/`num_gpus`, on the cluster at `address` (or
    `RAY_ADDRESS`), else on a local Ray started for the sweep. Runs write to the sweep's
    folder, so every node must see it at the same path (a shared file system)."""

    def __init__(
        self,
        address: str | None,
        num_cpus: float = 1,
        num_gpus: float = 0,
        max_parallel: int | None = None,
    ) -> None:
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        self.max_parallel = max_parallel

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise W2SError("the ray executor needs Ray: pip install 'w2s[ray]'") from None
        env = worker_env()
        passed = {k: v for k, v in env.items() if k.startswith(PASSED_ENV_PREFIXES)}
        kwargs: dict[str, Any] = {
            "runtime_env": {"env_vars": {**passed, "PYTHONPATH": env["PYTHONPATH"]}},
            "log_to_driver": False,
            "logging_level": "ERROR",
        }
        if self.address:
            kwargs["address"] = self.address
        elif not os.environ.get("RAY_ADDRESS"):
            kwargs["include_dashboard"] = False
        try:
            ray.init(**kwargs)
        except Exception as err:  # Ray raises many kinds; each is one line to the user
            where = self.address or os.environ.get("RAY_ADDRESS") or "a local Ray"
            line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise W2SError(f"cannot start or reach Ray at {where}: {line}") from None
        self.ray = ray

    def run(self, jobs: list[Job]) -> Iterator[Result]:
        ray = self.ray
        task = ray.remote(run_logged).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0
        )
        waiting = list(jobs)
        cap = self.max_parallel or len(jobs)
        running: dict[Any, tuple[Job, float]] = {}
        while waiting or running:
            while waiting and len(running) < cap:
                job = waiting.pop(0)
                running[task.remote(job)] = (job, time.perf_counter())
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                job, start = running.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as err:
                    line = (str(err).strip().splitlines() or [""])[0]
                    yield result(job, "failed", f"ray: {type(err).__name__}: {line}", start)

    def close(self) -> None:
        if getattr(self, "ray", None) is not None:
            self.ray.shutdown()


def make_executor(
    name: str,
    max_parallel: int | None = None,
    address: str | None = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
) -> Executor:
    """The executor called `name`; bad combinations are one-line errors."""
    if name not in EXECUTORS:
        raise W2SError(f"unknown executor '{name}' (executors: {', '.join(EXECUTORS)})")
    if max_parallel is not None and max_parallel < 1:
        raise W2SError(f"max_parallel must be at least 1, got {max_parallel}")
    if name == "local":
        if address:
            raise W2SError("--address is for the ray executor (use --executor ray)")
        return LocalExecutor(max_parallel or 1)
    return RayExecutor(address, num_cpus, num_gpus, max_parallel)


def worker_main() -> None:
    """A local worker: jobs as JSON lines on stdin, results as JSON lines on stdout; each
    run's own output goes to its log file, never into the result channel."""
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # stray prints must not corrupt the channel
    try:
        for line in sys.stdin:
            job = json.loads(line)
            channel.write(json.dumps(run_logged(job)) + "\n")
            channel.flush()
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(130)


if __name__ == "__main__":
    worker_main()
