"""Content-addressed on-disk cache: atomic writes guarded by file locks.

Every entry is written to a temporary name in its final directory and renamed into
place, so a killed process never leaves a half-written entry; a `FileLock` beside the
entry lets several processes share the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs
from filelock import FileLock

TMP_PREFIX = ".tmp-"
CORRUPT_PREFIX = ".corrupt-"


def cache_dir() -> Path:
    """The cache root: `$W2S_CACHE`, else the platform's user cache directory."""
    root = os.environ.get("W2S_CACHE") or platformdirs.user_cache_dir("w2s")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def download_dir() -> Path:
    """Where verified downloads live (zoo models, the BIG-bench archive and its extracted
    tasks): `$W2S_DOWNLOADS`, else the cache root. Separate from computed entries so that
    a fresh cache (e.g. the test suite's) need not fetch gigabytes again."""
    root = os.environ.get("W2S_DOWNLOADS")
    if not root:
        return cache_dir()
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


def jsonable(obj: Any) -> Any:
    """Plain JSON data: numpy scalars and arrays to Python, NaN and infinities to None
    (strict JSON has no NaN; `null` is what every reader accepts)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json_atomic(path: Path, data: Any) -> None:
    """Write strict JSON (NaN written as null) to `path` atomically."""
    text = json.dumps(jsonable(data), indent=2, sort_keys=False, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def visible(path: Path) -> bool:
    """Whether a cache reader should read `path` (temporaries and quarantined entries are
    dot-files)."""
    return not path.name.startswith(".")


def quarantine(path: Path, what: str, reason: str) -> Path:
    """Move a damaged cache entry (file or folder) aside to `.corrupt-<name>`, a name
    readers ignore, replacing an older quarantined copy, and print one warning line. If
    another process moved it first, say nothing (it has warned)."""
    from w2s.progress import warn

    aside = path.with_name(CORRUPT_PREFIX + path.name)
    try:
        if aside.is_dir():
            shutil.rmtree(aside)
        elif aside.exists():
            aside.unlink()
        os.replace(path, aside)
    except FileNotFoundError:
        return aside
    except OSError:  # a read-only cache: leave it, readers keep skipping it
        aside = path
    warn(f"{what} is damaged ({reason}); moved it to {aside} and making it again")
    return aside


def check_out_dir(out: Path) -> None:
    """Raise a one-line `W2SError` unless `out` can be (or is) a writable folder."""
    from w2s.errors import W2SError

    if out.exists() and not out.is_dir():
        raise W2SError(f"output folder {out} is a file")
    probe = out
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise W2SError(f"output folder {out}: {probe} is a file")
    try:  # a real write: permissions alone do not tell (root, read-only mounts, /proc)
        shutil.rmtree(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=probe))
    except OSError as err:
        raise W2SError(f"output folder {out}: cannot write in {probe} ({err.strerror})") from None


def make_out_dir(out: Path) -> Path:
    """`check_out_dir`, then create it; OS errors become one-line `W2SError`s."""
    from w2s.errors import W2SError

    check_out_dir(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise W2SError(f"cannot create output folder {out}: {err.strerror}") from None
    return out
