"""On-disk cache of generated texts and log-probs, keyed by model and request.

One folder per model key (backend, model, revision, adapter, max length); each write adds
a JSON shard `{request hash: value}` atomically under a lock, so a killed run leaves no
partial entry, reruns are free, and several processes can share the cache. Long
generations write as they go (`PartialWrites`), so a stopped one keeps what it finished.
A shard that cannot be read is renamed aside (`quarantine`) with one warning, and its
entries are recomputed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from w2s.cache import atomic_path, cache_dir, fingerprint, lock, quarantine, visible

CACHE_VERSION = 2


def request_key(*parts: Any) -> str:
    """The hash of one request (prompt, parameters)."""
    return fingerprint(CACHE_VERSION, *parts, length=24)


class LMCache:
    """Cached values of one model, loaded lazily; `get` misses re-scan for new shards."""

    def __init__(self, model_key: str, root: Path | None = None) -> None:
        self.root = (root or cache_dir() / "generations") / model_key
        self._index: dict[str, Any] = {}
        self._seen: set[str] = set()

    def _refresh(self) -> None:
        if not self.root.exists():
            return
        for shard in sorted(self.root.glob("*.json")):
            if shard.name in self._seen or not visible(shard):
                continue
            self._seen.add(shard.name)
            try:
                values = json.loads(shard.read_text(encoding="utf-8"))
                if not isinstance(values, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as err:
                quarantine(shard, "generation cache shard", type(err).__name__)
                continue
            self._index.update(values)

    def get(self, keys: list[str]) -> dict[str, Any]:
        """The cached values among `keys`."""
        if any(k not in self._index for k in keys):
            self._refresh()
        return {k: self._index[k] for k in keys if k in self._index}

    def put(self, values: dict[str, Any]) -> None:
        """Store `values` as one new shard."""
        if not values:
            return
        name = fingerprint(sorted(values), length=16) + ".json"
        with lock(self.root / "store"), atomic_path(self.root / name) as tmp:
            tmp.write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
        self._seen.add(name)
        self._index.update(values)


class PartialWrites:
    """Values of one long call, stored as they come: at most every `every_s` seconds while
    it runs, and the rest on `flush` (called at the end, or when it is stopped)."""

    def __init__(self, cache: LMCache | None, every_s: float) -> None:
        self.cache = cache
        self.every_s = every_s
        self._pending: dict[str, Any] = {}
        self._stored: set[str] = set()
        self._last = time.monotonic()

    def add(self, values: dict[str, Any]) -> None:
        self._pending.update({k: v for k, v in values.items() if k not in self._stored})
        if time.monotonic() - self._last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        if self.cache is not None and self._pending:
            self.cache.put(self._pending)
            self._stored.update(self._pending)
        self._pending = {}
        self._last = time.monotonic()
