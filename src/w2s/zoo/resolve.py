"""Resolve a model reference (zoo name, local folder or hub id) to a local folder."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from w2s.cache import fingerprint
from w2s.errors import UnknownNameError
from w2s.zoo.fetch import ensure_zoo_model
from w2s.zoo.registry import ZOO, ModelKind, Runtime


@dataclass(frozen=True)
class ModelSource:
    """A model ready to load: its reference, local folder, kind, content revision and the
    runtime that computes its features."""

    ref: str
    path: Path
    kind: ModelKind
    revision: str
    runtime: Runtime


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def looks_like_path(ref: str) -> bool:
    """True when `ref` cannot be a hub id, so it can only name a local path.

    Hub ids are `name` or `owner/name`: letters, digits, `_`, `-`, `.`, each part starting
    with a letter or digit. Anything else (a leading `.`, `/` or `~`, a backslash, two or
    more `/`, spaces, a drive letter) is a path. An `owner/name`-shaped ref that is not on
    disk is asked of the hub, whose error then says so.
    """
    return _HUB_ID.fullmatch(ref) is None


def _kind_of(folder: Path) -> tuple[ModelKind, Runtime]:
    if (folder / "modules.json").exists() or (
        folder / "config_sentence_transformers.json"
    ).exists():
        return "sentence_encoder", "sentence-transformers"
    if _is_model2vec(folder):
        return "sentence_encoder", "model2vec"
    return "causal_lm", "transformers"


def _is_model2vec(folder: Path) -> bool:
    """A Model2Vec static model: tokenizer.json, and model.safetensors holding a tensor
    named `embeddings` (transformers models have no such top-level tensor)."""
    weights = folder / "model.safetensors"
    if not (weights.is_file() and (folder / "tokenizer.json").is_file()):
        return False
    try:
        with open(weights, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(min(n, 1 << 20)))
    except (OSError, ValueError):
        return False
    return isinstance(header, dict) and "embeddings" in header


def _folder_revision(folder: Path) -> str:
    """A revision for a local folder: its config plus the size and mtime of its weights."""
    parts = []
    for f in sorted(folder.iterdir()):
        if f.suffix in {".json", ".safetensors", ".bin", ".gguf"} and f.is_file():
            st = f.stat()
            parts.append((f.name, st.st_size, int(st.st_mtime)))
    return fingerprint(parts, length=12)


def _from_hub(ref: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(ref, local_files_only=True))
    except Exception:
        pass
    try:
        return Path(snapshot_download(ref, etag_timeout=10))
    except Exception as err:
        zoo = ", ".join(ZOO)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnknownNameError(
            f"unknown model '{ref}': not a zoo name ({zoo}), not a local folder, and the "
            f"hub could not provide it ({reason[:120]})"
        ) from None


def resolve_model(ref: str) -> ModelSource:
    """Zoo name -> fetched/converted cache folder; local folder -> itself; else a hub id."""
    if ref in ZOO:
        entry = ZOO[ref]
        path = ensure_zoo_model(entry)
        return ModelSource(ref, path, entry.kind, entry.artifact_sha256[:12], entry.engine)
    local = Path(ref).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists() and not (local / "modules.json").exists():
            raise UnknownNameError(f"model folder '{ref}' has no config.json or modules.json")
        kind, runtime = _kind_of(local)
        return ModelSource(ref, local.resolve(), kind, _folder_revision(local), runtime)
    if local.exists():
        raise UnknownNameError(f"model path '{ref}' is a file: give the folder that holds it")
    if looks_like_path(ref):
        raise UnknownNameError(
            f"model folder not found: {ref} (and it is not a zoo name: {', '.join(ZOO)})"
        )
    path = _from_hub(ref)
    revision = path.name if len(path.name) >= 12 else _folder_revision(path)
    kind, runtime = _kind_of(path)
    return ModelSource(ref, path, kind, revision[:12], runtime)
