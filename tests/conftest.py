"""Shared fixtures. Tests use the real user cache (models and BIG-bench are fetched once)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("W2S_QUIET", "1")


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
    return [ln for ln in proc.stderr.splitlines() if ln.strip()]
