"""Cheap checks that cached files are whole (damaged entries go to `cache.quarantine`).

A folder's manifest maps each file (path relative to the folder) to its `size` and
`sha256`, recorded when the folder is made. Checking sizes costs one `stat` per file, so
it runs on every resolve; it catches truncation and missing files, not same-size damage.
"""

from __future__ import annotations

import json
from pathlib import Path

from w2s.cache import sha256_file


def file_table(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, dict]:
    """Every file under `folder` (but `skip`) -> {"size": bytes, "sha256": hex digest}."""
    table = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel not in skip:
            table[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return table


def size_problem(folder: Path, table: dict[str, dict]) -> str | None:
    """Why `folder` does not match `table` (a file missing or of another size), else None."""
    if not table:
        return "its manifest lists no files"
    for rel, entry in table.items():
        path = folder / rel
        if not path.is_file():
            return f"{rel} is missing"
        size, want = path.stat().st_size, entry.get("size") if isinstance(entry, dict) else None
        if size != want:
            return f"{rel} has {size} bytes, {want} when it was made"
    return None


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file is not whole (its size disagrees with its header), else None."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if size < 8 or n > size - 8:
                return f"{path.name} is cut inside its header"
            header = json.loads(f.read(n))
        end = max(
            (v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0
        )
    except (ValueError, KeyError, TypeError, IndexError):
        return f"{path.name} has an unreadable header"
    if 8 + n + end != size:
        return f"{path.name} has {size} bytes, its header says {8 + n + end}"
    return None


def structure_problem(folder: Path) -> str | None:
    """Why a model folder made without a size manifest looks damaged, else None.

    Every `.safetensors` file must match its own header and every `.json` must parse."""
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".safetensors":
            problem = safetensors_problem(path)
            if problem:
                return problem
        elif path.suffix == ".json" and path.is_file():
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                return f"{path.relative_to(folder)} is not valid JSON"
    return None
