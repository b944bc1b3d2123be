"""The in-process llama.cpp backend. Without the library: one clear install hint, and
bad references are data errors. With it (marked `integration`, run by
`make test-integration`), on the zoo's SmolLM2-135M GGUF as shipped: the backend
contract (greedy determinism, batched equals one-by-one, seeded sampling, stop strings,
the generation cache), prompts rendered and tokenised as transformers does, log-probs
close to transformers float32, and a LoRA adapter trained by transformers and converted
to GGUF changes llama.cpp's answers as it changes transformers' answers."""

import importlib.util
import sys

import pytest

from w2s.errors import BackendError, DataError, UnknownNameError
from w2s.models.lm import AUTO_ENV, auto_backend, make_lm

PROMPTS = [
    "What is the capital of France?",
    "Write one short sentence about cats.",
    "What is 2 + 2?",
    "List three colors.",
    "Say hello in Spanish.",
]


def test_missing_library_is_one_line_with_the_install_command(monkeypatch):
    from w2s.models.lm import llamacpp

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    monkeypatch.setattr(llamacpp, "gguf_of", lambda ref: (None, "r"))
    lm = make_lm("smollm2-135m", "llamacpp", cache=False)
    with pytest.raises(BackendError) as err:
        lm.complete(["hi"])
    msg = str(err.value)
    assert "\n" not in msg and "pip install 'w2s[llamacpp]'" in msg and "0.3.36" in msg


def test_references_without_a_gguf_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="has no GGUF file"):
        make_lm("minilm-l6", "llamacpp")
    with pytest.raises(DataError, match=r"zoo model with a GGUF \(smollm2-135m"):
        make_lm(str(tmp_path / "missing.gguf"), "llamacpp")


def test_auto_backend_is_llamacpp_only_for_a_gguf_with_the_library_installed(monkeypatch):
    monkeypatch.delenv(AUTO_ENV, raising=False)
    installed = importlib.util.find_spec("llama_cpp") is not None
    assert auto_backend("smollm2-135m") == ("llamacpp" if installed else "transformers")
    assert auto_backend("HuggingFaceTB/SmolLM2-135M-Instruct") == "transformers"  # no GGUF
    assert auto_backend("minilm-l6") == "transformers"
    assert auto_backend("smollm2-135m", needs_transformers=True) == "transformers"
    monkeypatch.setenv(AUTO_ENV, "llamacpp")
    assert auto_backend("qwen2.5-1.5b") == "llamacpp"
    assert auto_backend("qwen2.5-1.5b", needs_transformers=True) == "transformers"
    monkeypatch.setenv(AUTO_ENV, "vllm")
    with pytest.raises(UnknownNameError, match=f"{AUTO_ENV} must be transformers or llamacpp"):
        auto_backend("qwen2.5-1.5b")


# -- integration: the compiled library on real GGUF files ----------------------------------

needs_llama = pytest.mark.integration


@pytest.fixture(scope="module")
def lm():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    lm = make_lm("smollm2-135m", "llamacpp", parallel=4, threads=1, cache=False)
    yield lm
    lm.close()


@pytest.fixture(scope="module")
def hf():
    return make_lm("smollm2-135m", dtype="float32", cache=False)


@needs_llama
def test_greedy_is_deterministic_and_batched_equals_one_by_one(lm):
    batched = lm.complete(PROMPTS, max_new_tokens=24)
    assert lm.complete(PROMPTS, max_new_tokens=24) == batched
    single = [lm.complete([p], max_new_tokens=24)[0] for p in PROMPTS]
    assert batched == single
    assert all(batched) and "4" in batched[2] and len(set(batched)) == len(PROMPTS)


@needs_llama
def test_seeded_sampling_is_reproducible_and_independent_of_the_batch(lm):
    a = lm.generate(PROMPTS[:3], max_new_tokens=12, temperature=1.0, n=3, seed=1)
    assert [len(s) for s in a] == [3, 3, 3]
    assert lm.generate(PROMPTS[:3], max_new_tokens=12, temperature=1.0, n=3, seed=1) == a
    alone = lm.generate(PROMPTS[1:2], max_new_tokens=12, temperature=1.0, n=3, seed=1)
    assert alone[0] == a[1]
    other = lm.generate(PROMPTS[:3], max_new_tokens=12, temperature=1.0, n=3, seed=2)
    assert other != a and len(set(a[0] + a[1] + a[2])) > 3  # samples vary


@needs_llama
def test_stop_strings_cut_the_answer(lm):
    out = lm.complete(["Count from 1 to 10, separated by commas."], max_new_tokens=30, stop=["5"])
    assert "5" not in out[0] and "1" in out[0] and "6" not in out[0]


@needs_llama
def test_cache_serves_reruns_and_keys_the_backend(lm, hf, tmp_path, monkeypatch):
    from w2s.models.lm.cache import LMCache

    cached = make_lm("smollm2-135m", "llamacpp", parallel=4, threads=1)
    cached._cache = LMCache(cached.key, root=tmp_path)
    first = cached.complete(PROMPTS[:2], max_new_tokens=10)
    assert first == lm.complete(PROMPTS[:2], max_new_tokens=10)
    monkeypatch.setattr(cached, "_generate", lambda *a, **k: pytest.fail("not served from cache"))
    assert cached.complete(PROMPTS[:2], max_new_tokens=10) == first
    cached.close()
    assert cached.key != hf.key  # the backend is part of the key
    assert make_lm("smollm2-135m", "llamacpp", max_length=512, cache=False).key != lm.key


@needs_llama
def test_a_stopped_generation_keeps_what_it_finished_and_resumes_alike(lm, tmp_path, monkeypatch):
    from w2s.models.lm.cache import LMCache

    whole = lm.complete(PROMPTS[:4], max_new_tokens=10)
    cached = make_lm("smollm2-135m", "llamacpp", parallel=2, threads=1)
    cached._cache = LMCache(cached.key, root=tmp_path)
    cached.cache_every_s = 0.0
    decode = cached._decode

    def stop_once_one_is_stored(entries):  # Ctrl-C as soon as a finished prompt is on disk
        if list((tmp_path / cached.key).glob("*.json")):
            raise KeyboardInterrupt
        decode(entries)

    monkeypatch.setattr(cached, "_decode", stop_once_one_is_stored)
    with pytest.raises(KeyboardInterrupt):
        cached.complete(PROMPTS[:4], max_new_tokens=10)
    monkeypatch.setattr(cached, "_decode", decode)
    asked, generate = [], cached._generate
    monkeypatch.setattr(
        cached, "_generate", lambda chats, *a, **k: asked.extend(chats) or generate(chats, *a, **k)
    )
    assert cached.complete(PROMPTS[:4], max_new_tokens=10) == whole
    assert 1 <= len(asked) < 4  # what finished before the stop is not decoded again
    cached.close()


@needs_llama
def test_prompts_render_and_tokenise_as_in_transformers(lm, hf):
    from w2s.models.lm.base import to_messages

    for prompt in [PROMPTS[0], [{"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello!"},
                                {"role": "user", "content": "And 3 + 4?"}]]:  # fmt: skip
        chat = to_messages(prompt, system="Be brief.")
        assert lm.render(chat) == hf.render(chat)
        assert lm._encode_prompt(chat) == hf._encode_prompt(chat)


@needs_llama
def test_log_probs_are_batch_free_and_close_to_transformers(lm, hf):
    pairs = [
        (PROMPTS[0], "Paris is the capital of France."),
        (PROMPTS[2], "4"),
        (PROMPTS[4], "Hola."),
    ]
    got = lm.logprobs_batch(pairs)
    assert [lm.logprobs(p, c) for p, c in pairs] == got
    want = hf.logprobs_batch(pairs)
    for g, w in zip(got, want, strict=True):
        assert abs(g - w) < 0.1 + 0.1 * abs(w), (got, want)  # Q4_1 weights, q8 activations
    assert lm.logprobs(PROMPTS[0], "Paris") > lm.logprobs(PROMPTS[0], "Banana")
    assert lm.logprobs(PROMPTS[0], "") == 0.0


@needs_llama
def test_pairs_sharing_a_prompt_reuse_its_prefix_and_score_as_alone(lm, hf):
    """G-Eval's ten score replies share one rubric prompt: it is decoded once, and each
    pair's value is the one it gets alone, in whatever order or company."""
    from w2s.models.lm.base import to_messages

    pairs = [(PROMPTS[0], f"Score: {s}") for s in range(1, 11)]
    pairs += [(PROMPTS[2], "4"), (PROMPTS[0], "Paris")]
    items = [(to_messages(p), c) for p, c in pairs]
    prefills = []
    real = lm._decode
    lm._decode = lambda entries: prefills.append(not any(e[3] for e in entries)) or real(entries)
    try:
        together = lm._logprobs(items)
    finally:
        lm._decode = real
    assert sum(prefills) == 3  # PROMPTS[0] once for its ten replies, PROMPTS[2], PROMPTS[0]
    assert together == [lm._logprobs([item])[0] for item in items]
    assert together[::-1] == lm._logprobs(items[::-1])
    want = hf.logprobs_batch(pairs)
    for g, w in zip(together, want, strict=True):
        assert abs(g - w) < 0.1 + 0.1 * abs(w), (together, want)


@needs_llama
def test_f16_weights_are_retyped_once_and_closer_to_transformers(lm, hf, tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path))
    pairs = [(PROMPTS[0], "Paris is the capital of France."), (PROMPTS[4], "Hola, amigo.")]
    f16 = make_lm("smollm2-135m", "llamacpp", parallel=4, threads=1, cache=False, weights="f16")
    got = f16.logprobs_batch(pairs)
    (retyped,) = (tmp_path / "gguf-retyped").glob("*-f16.gguf")
    stamp = retyped.stat().st_mtime_ns
    f16.close()
    assert f16.key != lm.key and "f16" in f16.name
    want, shipped = hf.logprobs_batch(pairs), lm.logprobs_batch(pairs)
    for g, w, q in zip(got, want, shipped, strict=True):
        assert abs(g - w) < 0.02 + 0.01 * abs(w), (got, want)  # f16 weights and activations
        assert abs(g - w) < abs(q - w), (got, shipped, want)  # closer than Q4_1 arithmetic
    again = make_lm("smollm2-135m", "llamacpp", parallel=4, threads=1, cache=False, weights="f16")
    assert again.complete(PROMPTS[:1], max_new_tokens=4) and retyped.stat().st_mtime_ns == stamp
    again.close()
    with pytest.raises(DataError, match="llama.cpp weights are shipped or f16, not 'q2'"):
        make_lm("smollm2-135m", "llamacpp", weights="q2")


@needs_llama
def test_lora_adapter_changes_answers_as_in_transformers(lm, hf, tmp_path):
    pairs = [(f"What is the secret code {i}?", "Arr, the code be BANANA!") for i in range(4)]
    tuned_hf = hf.sft(pairs, out=tmp_path / "adapter", epochs=3, lr=3e-3, batch_size=4, r=8)
    tuned = make_lm(str(tmp_path / "adapter"), "llamacpp", parallel=4, threads=1, cache=False)
    assert tuned.adapter_meta["base"] == "smollm2-135m" and tuned.key != lm.key
    probe = ["What is the secret code 3?", "What is the secret code 42?"]
    base_out = lm.complete(probe, max_new_tokens=12)
    hf_out = tuned_hf.complete(probe, max_new_tokens=12)
    lc_out = tuned.complete(probe, max_new_tokens=12)
    assert not any("BANANA" in a for a in base_out)
    assert all("BANANA" in a for a in hf_out) and all("BANANA" in a for a in lc_out)
    # the adapter raises the target's log-prob by about as much in both backends
    target = (probe[0], "Arr, the code be BANANA!")
    gain_lc = tuned.logprobs(*target) - lm.logprobs(*target)
    gain_hf = tuned_hf.logprobs(*target) - hf.logprobs(*target)
    assert gain_hf > 5 and abs(gain_lc - gain_hf) < 0.15 * gain_hf, (gain_lc, gain_hf)
    tuned.close()


@needs_llama
def test_w2s_run_uses_llamacpp_by_default_when_installed(w2s_cli, tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    monkeypatch.delenv(AUTO_ENV)  # no backend named anywhere: `auto` detects the library
    args = ["run", "--task", "persona", "--weak", "smollm2-135m", "--strong", "smollm2-135m"]
    args += ["--methods", "unaltered", "--out", str(tmp_path / "run")]
    for split, n in (("weak_train", 4), ("strong_train", 4), ("val", 2), ("test", 4)):
        args += ["--set", f"data.n_{split}={n}"]
    proc = w2s_cli(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    import pandas as pd

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.0 <= metrics["methods"]["unaltered"]["correct"] <= 1.0
    assert metrics["backends"] == {"weak": "llamacpp", "strong": "llamacpp"}
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert config.count("backend: llamacpp") == 3 and "backend: auto" not in config  # + judge
    preds = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert len(preds) == 4
    for who in ("weak", "ceiling", "unaltered"):
        assert preds[who].astype(str).str.strip().str.len().gt(0).all(), preds[who]
