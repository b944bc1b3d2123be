"""Per-run stage store: each finished stage is saved (atomically) in the run directory,
keyed by the run's fingerprint, so an interrupted run resumes and a rerun is free."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from w2s.cache import atomic_path


class StageStore:
    """`get_or_run(name, fn)`: load `name`'s arrays if saved under this run key, else run
    `fn` (returning a dict of arrays) and save its result."""

    def __init__(self, root: Path, run_key: str) -> None:
        self.root = root
        self.run_key = run_key
        self.reused: list[str] = []

    def _path(self, name: str) -> Path:
        return self.root / f"{name}-{self.run_key}.npz"

    def get_or_run(
        self, name: str, fn: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        path = self._path(name)
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                self.reused.append(name)
                return {k: data[k] for k in data.files}
        result = fn()
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **result)
        return result
