"""Stage store: each finished stage is saved (atomically) under a key built from that
stage's own inputs and its code's version, so an interrupted run resumes, a rerun is free,
and changing one input recomputes only what depends on it. A run keeps its own store in
its directory; a sweep's runs share one (`locked`: one process computes a stage while
the others wait for it)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from w2s.cache import atomic_path, fingerprint, lock, quarantine

STAGE_FORMAT = 2  # the layout of a saved stage file


class StageStore:
    """`get_or_run(name, key_parts, fn)`: load `name`'s arrays if saved under the key of
    `key_parts`, else run `fn` (returning a dict of arrays) and save its result. With
    `locked`, a file lock per stage key guards the check-and-compute across processes."""

    def __init__(self, root: Path, locked: bool = False, write: bool = True) -> None:
        self.root = root
        self.locked = locked
        self.write = write  # False: compute but never save (the non-main processes)
        self.reused: list[str] = []

    def key(self, name: str, key_parts: Any) -> str:
        return fingerprint(STAGE_FORMAT, name, key_parts, length=20)

    def get_or_run(
        self, name: str, key_parts: Any, fn: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        path = self.root / f"{name}-{self.key(name, key_parts)}.npz"
        saved = self._load(name, path)
        if saved is not None:
            return saved
        if not self.locked or not self.write:
            return self._compute(path, fn)
        with lock(path):  # another process may have computed it while we waited
            saved = self._load(name, path)
            return saved if saved is not None else self._compute(path, fn)

    def _load(self, name: str, path: Path) -> dict[str, np.ndarray] | None:
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            quarantine(path, f"saved stage '{name}'", f"unreadable: {type(err).__name__}")
            return None
        self.reused.append(name)
        return arrays

    def _compute(
        self, path: Path, fn: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        result = fn()
        if not self.write:
            return result
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **result)  # answers as padded UTF-32: ~10x smaller
        return result


def pack_json(value: Any) -> np.ndarray:
    """A JSON-able value as a 0-d string array (to store diagnostics beside arrays)."""
    return np.array(json.dumps(value, default=float))


def unpack_json(value: np.ndarray | None, default: Any = None) -> Any:
    return default if value is None else json.loads(str(value))
