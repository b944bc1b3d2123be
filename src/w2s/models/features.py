"""On-disk feature cache, content-addressed per encoder and per text.

Each encoder has a folder of shards (`.npz` with text hashes and features). A request
loads what is cached and encodes only the texts not yet seen, writing them as a new
shard atomically under a lock: a killed run leaves no partial shard, reruns are free,
and runs with different split sizes share work.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from w2s.cache import TMP_PREFIX, atomic_path, cache_dir, lock
from w2s.models.encoders import Encoder


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class FeatureStore:
    """Cached features of one encoder."""

    def __init__(self, encoder: Encoder, root: Path | None = None) -> None:
        self.encoder = encoder
        self.root = (root or cache_dir() / "features") / encoder.key

    def _shards(self) -> list[Path]:
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.glob("*.npz") if not p.name.startswith(TMP_PREFIX))

    def _load(self) -> tuple[dict[str, int], list[np.ndarray]]:
        index: dict[str, int] = {}
        blocks: list[np.ndarray] = []
        offset = 0
        for shard in self._shards():
            with np.load(shard) as data:
                hashes, feats = data["hashes"], data["features"]
            for i, h in enumerate(hashes.tolist()):
                index.setdefault(h, offset + i)
            blocks.append(feats)
            offset += len(feats)
        return index, blocks

    def get(self, texts: list[str]) -> np.ndarray:
        """Features for `texts` in order, encoding only those not cached."""
        hashes = [text_hash(t) for t in texts]
        index, blocks = self._load()
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in index}
        if missing:
            with lock(self.root / "store"):
                index, blocks = self._load()
                todo = {h: t for h, t in missing.items() if h not in index}
                if todo:
                    feats = self.encoder.encode(list(todo.values()))
                    self._write(list(todo), feats)
                    index, blocks = self._load()
        table = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        return table[[index[h] for h in hashes]]

    def _write(self, hashes: list[str], feats: np.ndarray) -> None:
        name = hashlib.sha1("".join(hashes).encode()).hexdigest()[:16] + ".npz"
        with atomic_path(self.root / name) as tmp, open(tmp, "wb") as f:
            np.savez(f, hashes=np.array(hashes), features=feats.astype(np.float32))


def features(encoder: Encoder, texts: list[str]) -> np.ndarray:
    """Cached features of `texts` under `encoder`."""
    return FeatureStore(encoder).get(texts)
