"""On-disk feature cache, content-addressed per encoder and per text.

Each encoder has a folder of shards (`.npz` with text hashes and float32 features). A
request loads what is cached and encodes only the texts not yet seen, writing them as a
new shard atomically under a lock: a killed run leaves no partial shard, reruns are free,
and runs with different split sizes share work. Encoders give each text the same
features whatever else is encoded with it, so a cache filled in any order holds the same
values. A shard that cannot be read is moved aside with one warning and recomputed.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from w2s.cache import atomic_path, cache_dir, lock, quarantine, visible
from w2s.models.encoders import Encoder

UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def read_shard(path: Path) -> tuple[list[str], np.ndarray]:
    """The text hashes and features of one shard; raises if it is damaged."""
    with np.load(path, allow_pickle=False) as data:
        hashes, feats = data["hashes"].tolist(), data["features"]
    if feats.ndim != 2 or len(hashes) != len(feats):
        raise ValueError(f"shapes disagree: {len(hashes)} hashes, features {feats.shape}")
    return hashes, feats


class FeatureStore:
    """Cached features of one encoder."""

    def __init__(self, encoder: Encoder, root: Path | None = None) -> None:
        self.encoder = encoder
        self.root = (root or cache_dir() / "features") / encoder.key

    def _shards(self) -> list[Path]:
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.glob("*.npz") if visible(p))

    def _load(self) -> tuple[dict[str, int], list[np.ndarray]]:
        index: dict[str, int] = {}
        blocks: list[np.ndarray] = []
        offset = 0
        for shard in self._shards():
            try:
                hashes, feats = read_shard(shard)
            except UNREADABLE as err:
                quarantine(shard, "feature cache shard", type(err).__name__)
                continue
            for i, h in enumerate(hashes):
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
        if not blocks:
            return np.zeros((0, 0), np.float32)  # only for an empty request
        table = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        return table[[index[h] for h in hashes]]

    def _write(self, hashes: list[str], feats: np.ndarray) -> None:
        name = hashlib.sha1("".join(hashes).encode()).hexdigest()[:16] + ".npz"
        with atomic_path(self.root / name) as tmp, open(tmp, "wb") as f:
            np.savez(f, hashes=np.array(hashes), features=feats.astype(np.float32))


def features(encoder: Encoder, texts: list[str]) -> np.ndarray:
    """Cached features of `texts` under `encoder`."""
    return FeatureStore(encoder).get(texts)
