"""Shared fixtures. Each test session computes into its own fresh cache root
(`W2S_CACHE`, a temporary folder), so results never depend on what the user's cache
holds; verified downloads (zoo weights, the BIG-bench archive) are shared with the user's
cache through `W2S_DOWNLOADS`, so models are fetched once per machine, not per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import platformdirs
import pytest

os.environ.setdefault("W2S_QUIET", "1")
# `backend: auto` means transformers here, whether or not the llamacpp extra is installed
# (`make test-integration` installs it in the same virtualenv): the default suite's numbers
# must not depend on it. Tests of the detection itself clear the variable.
os.environ.setdefault("W2S_AUTO_BACKEND", "transformers")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per worker (and per `w2s` subprocess it starts): with two workers on two
    # cores, two-thread torch processes compete and OpenMP's spin-waits slow both down
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"
    if "torch" in sys.modules:  # imported before this file: the variables came too late
        sys.modules["torch"].set_num_threads(1)
os.environ.setdefault(
    "W2S_DOWNLOADS", os.environ.get("W2S_CACHE") or platformdirs.user_cache_dir("w2s")
)
# one session cache for the whole run: `make test` runs two pytest-xdist workers, which
# inherit it from the controller (cache writes are atomic and locked, so they can share)
_OWNER = "W2S_TEST_SESSION_CACHE" not in os.environ
if _OWNER:
    os.environ["W2S_TEST_SESSION_CACHE"] = tempfile.mkdtemp(prefix="w2s-test-cache-")
_SESSION_CACHE = os.environ["W2S_TEST_SESSION_CACHE"]
os.environ["W2S_CACHE"] = _SESSION_CACHE


def pytest_unconfigure(config) -> None:
    if _OWNER:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture
def w2s_cli():
    """Run the real `w2s` command; returns CompletedProcess with text output."""

    def run(
        *args: str, cwd: Path | None = None, timeout: float = 900
    ) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "w2s.cli", *args]
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=timeout,
            env={**os.environ, "W2S_QUIET": "1"},
        )

    return run


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """stderr's lines, less `done ...` progress lines: on a clean machine the first use of a
    zoo model prints its one-time download and conversion before the error."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return [ln for ln in lines if not ln.startswith("done ")]
