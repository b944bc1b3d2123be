"""Content-addressed on-disk cache: atomic writes guarded by file locks.

Every entry is written to a temporary name in its final directory and renamed into
place, so a killed process never leaves a half-written entry; a `FileLock` beside the
entry lets several processes share the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs
from filelock import FileLock

TMP_PREFIX = ".tmp-"


def cache_dir() -> Path:
    """The cache root: `$W2S_CACHE`, else the platform's user cache directory."""
    root = os.environ.get("W2S_CACHE") or platformdirs.user_cache_dir("w2s")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def fingerprint(*parts: Any, length: int = 16) -> str:
    """A short stable hash of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def lock(path: Path, timeout: float = -1) -> FileLock:
    """A cross-process lock guarding the entry at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=timeout)


@contextlib.contextmanager
def atomic_path(final: Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `final`; on success rename it to `final`.

    On any exception (or a kill) the temporary is removed or left under a name
    readers ignore, and `final` is untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=final.parent))
        os.chmod(tmp, 0o755)
    else:
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=final.parent)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o644)
    try:
        yield tmp
        if directory and final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=float) + "\n")
