"""The transformers backend on a real tiny model (SmolLM2-135M), in float32 (the CPU
default) unless said: batched greedy generation equals one-by-one, log-probs do not
depend on their batch (float32 and bf16, exactly) and equal a manual forward, LoRA SFT
lowers the loss and its saved adapter reloads with the same outputs; the generation
cache, its key, and recovery from a damaged shard."""

import pytest
import torch

from tests.fakes import ScriptedLM
from w2s.cache import CORRUPT_PREFIX
from w2s.errors import BackendError, DataError
from w2s.models.lm import make_lm
from w2s.models.lm.base import render_plain, to_messages
from w2s.models.lm.cache import LMCache
from w2s.models.lm.hf import HFLanguageModel

PROMPTS = [
    "What is the capital of France?",
    "Write one short sentence about cats.",
    "What is 2 + 2?",
    "List three colors.",
    "Say hello in Spanish.",
]


PAIRS = [
    (PROMPTS[0], "Paris is the capital of France."),
    (PROMPTS[2], "4"),
    (PROMPTS[3], "Red, green and blue, which are all nice colors to look at."),
    (PROMPTS[3], "Red."),
    (PROMPTS[4], "Hola."),
    (PROMPTS[1], "Cats sleep a lot."),
]


@pytest.fixture(scope="module")
def lm():
    lm = HFLanguageModel("smollm2-135m", batch_size=8, cache=False)
    assert lm.dtype == "float32"  # `auto` on CPU
    return lm


def test_batched_generation_equals_one_by_one(lm):
    # in bf16 batched greedy decoding may differ from one-by-one (rounding that
    # depends on the batch shape), which is accepted there for throughput
    batched = lm.complete(PROMPTS, max_new_tokens=16)
    single = [lm.complete([p], max_new_tokens=16)[0] for p in PROMPTS]
    assert batched == single
    assert all(batched) and "Paris" in batched[0]


def test_stop_strings_and_samples(lm):
    cut = lm.complete(["Count from 1 to 10, separated by commas."], max_new_tokens=20, stop=["5"])
    assert "5" not in cut[0] and "1" in cut[0]
    samples = lm.generate(PROMPTS[:2], max_new_tokens=8, temperature=1.0, n=3, seed=1)
    assert [len(s) for s in samples] == [3, 3]
    again = lm.generate(PROMPTS[:2], max_new_tokens=8, temperature=1.0, n=3, seed=1)
    assert again == samples  # seeded sampling is reproducible


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])  # bf16: the GPU default
def test_logprobs_do_not_depend_on_the_batch(dtype):
    # scores are bitwise the same alone, batched, or in another order
    lm = HFLanguageModel("smollm2-135m", batch_size=8, cache=False, dtype=dtype)
    single = [lm.logprobs(p, c) for p, c in PAIRS]
    assert lm.logprobs_batch(PAIRS) == single
    assert lm.logprobs_batch(PAIRS[::-1] + [(PROMPTS[0], "Lyon.")])[:-1] == single[::-1]
    assert lm.logprobs(PROMPTS[0], "Paris") > lm.logprobs(PROMPTS[0], "Banana")
    assert lm.logprobs(PROMPTS[0], "") == 0.0


def test_logprobs_equal_manual_forward(lm):
    model, tok = lm.model, lm.tokenizer
    manual, sizes = [], []
    with torch.inference_mode():
        for prompt, completion in PAIRS:
            text = lm.render(to_messages(prompt))
            p = tok(text, add_special_tokens=False)["input_ids"]
            c = tok(completion, add_special_tokens=False)["input_ids"]
            logp = model(input_ids=torch.tensor([p + c])).logits[0].float().log_softmax(-1)
            manual.append(sum(float(logp[len(p) + i - 1, t]) for i, t in enumerate(c)))
            sizes.append(len(c))
    batched = lm.logprobs_batch(PAIRS)  # padded, fixed-shape batches
    # float32 rounding (eps 1.2e-7) through 30 blocks: padded and unpadded forwards differ
    # by <= 5e-6 per completion token here (bf16: 1e-3 to 9e-2); allow 2**12 eps = 4.9e-4
    eps = torch.finfo(torch.float32).eps
    for got, want, n in zip(batched, manual, sizes, strict=True):
        assert got == pytest.approx(want, abs=n * 2**12 * eps)
    assert lm.logprobs_batch(PAIRS[:1]) == batched[:1]


@pytest.mark.slow  # gemma3's first use converts its GGUF (87 s on a clean machine)
def test_models_without_chat_template_get_plain_prompts():
    gemma = HFLanguageModel("gemma3-270m", cache=False)  # base model, no chat template
    assert gemma.chat is False
    chat = to_messages("What is 3 + 4?", system="Be brief.")
    assert gemma.render(chat) == "Be brief.\n\nQuestion: What is 3 + 4?\nAnswer:"
    assert "\nQuestion:" in gemma.stop_strings()


def test_plain_prompts_of_a_conversation():
    chat = to_messages("What is 3 + 4?", system="Be brief.")
    assert render_plain(chat) == "Be brief.\n\nQuestion: What is 3 + 4?\nAnswer:"
    assert (
        render_plain(
            [
                {"role": "user", "content": "a?"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c?"},
            ]
        )
        == "Question: a?\nAnswer: b\n\nQuestion: c?\nAnswer:"
    )


def test_sft_lowers_loss_and_adapter_reloads(lm, tmp_path):
    pairs = [(f"What is the secret code {i}?", "Arr, the code be BANANA!") for i in range(4)]
    before = lm.completion_loss(pairs)
    tuned = lm.sft(pairs, out=tmp_path / "adapter", epochs=3, lr=3e-3, batch_size=4, r=8)
    after = tuned.completion_loss(pairs)
    assert after < before / 2, (before, after)
    losses = tuned.adapter_meta["train_losses"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    probe = ["What is the secret code 3?", "What is the secret code 42?"]
    out = tuned.complete(probe, max_new_tokens=12)
    assert "BANANA" in out[0]
    reloaded = make_lm(str(tmp_path / "adapter"), cache=False)  # adapter folder -> base + LoRA
    assert reloaded.adapter_meta["base"] == "smollm2-135m"
    assert reloaded.complete(probe, max_new_tokens=12) == out
    assert reloaded.completion_loss(pairs) == pytest.approx(after, rel=1e-3, abs=1e-3)
    # a dtype given with the folder overrides the trained one (was a TypeError)
    in_bf16 = make_lm(str(tmp_path / "adapter"), dtype="bfloat16", batch_size=2, cache=False)
    assert in_bf16.dtype != reloaded.dtype and in_bf16.key != reloaded.key
    # the same training request loads the saved adapter instead of training again
    again = lm.sft(pairs, out=tmp_path / "adapter", epochs=3, lr=3e-3, batch_size=4, r=8)
    assert again._model is None and again.key == tuned.key


def test_micro_batches_give_the_whole_batch_update_in_less_memory(lm, tmp_path):
    pairs = [(f"Name a fruit, number {i}.", "Banana" + " and mango" * (i % 3)) for i in range(4)]
    hp = {"epochs": 2, "lr": 3e-3, "batch_size": 4, "r": 8, "dropout": 0.0}
    whole = lm.sft(pairs, out=tmp_path / "whole", **hp)
    split = lm.sft(pairs, out=tmp_path / "split", micro_batch_size=1, **hp)
    # float32: accumulation only re-orders sums, so the losses agree to float rounding
    lw, ls = whole.adapter_meta["train_losses"], split.adapter_meta["train_losses"]
    assert ls == pytest.approx(lw, rel=1e-4) and lw[1] < lw[0]
    probe = [("Name a fruit, number 9.", "Banana and mango")]
    assert split.completion_loss(probe) == pytest.approx(whole.completion_loss(probe), rel=1e-3)
    # the cache key: a micro-batch as large as the batch is the unsplit run
    assert lm.sft(pairs, micro_batch_size=4, **hp).key == lm.sft(pairs, **hp).key
    assert split.adapter_meta["fingerprint"] != whole.adapter_meta["fingerprint"]


def test_generation_cache_makes_reruns_free(tmp_path):
    lm = ScriptedLM(lambda chat: "hi " + chat[-1]["content"])
    lm._cache = LMCache(lm.key, root=tmp_path)
    first = lm.complete(["a", "b", "a"], max_new_tokens=5)
    assert first == ["hi a", "hi b", "hi a"] and len(lm.calls) == 2  # duplicates generated once
    fresh = ScriptedLM(lambda chat: "changed")
    fresh._cache = LMCache(fresh.key, root=tmp_path)
    assert fresh.complete(["b", "a"], max_new_tokens=5) == ["hi b", "hi a"]
    assert fresh.calls == []  # served from disk
    assert fresh.complete(["a"], max_new_tokens=6) == ["changed"]  # other params, other key
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]


def test_a_stopped_generation_keeps_what_it_finished(tmp_path):
    def reply(chat):
        if chat[-1]["content"] == "c":  # the user presses Ctrl-C while "c" decodes
            raise KeyboardInterrupt
        return "hi " + chat[-1]["content"]

    lm = ScriptedLM(reply)
    lm._cache = LMCache(lm.key, root=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        lm.complete(["a", "b", "c", "d"], max_new_tokens=5)
    again = ScriptedLM(lambda chat: "hi " + chat[-1]["content"])
    again._cache = LMCache(again.key, root=tmp_path)
    assert again.complete(["a", "b", "c", "d"], max_new_tokens=5) == [
        "hi a",
        "hi b",
        "hi c",
        "hi d",
    ]
    assert [c[-1]["content"] for c in again.calls] == ["c", "d"]  # a and b were kept


@pytest.mark.parametrize(("every_s", "on_disk"), [(0.0, 2), (3600.0, 0)])
def test_a_long_generation_writes_as_it_goes(tmp_path, every_s, on_disk):
    # what is on disk while "c" decodes: all a hard kill (no `finally`) would leave
    seen = []

    def reply(chat):
        if chat[-1]["content"] == "c":
            seen.append(len(list((tmp_path / lm.key).glob("*.json"))))
        return "hi " + chat[-1]["content"]

    lm = ScriptedLM(reply)
    lm._cache = LMCache(lm.key, root=tmp_path)
    lm.cache_every_s = every_s
    lm.complete(["a", "b", "c", "d"], max_new_tokens=5)
    assert seen == [on_disk]
    again = ScriptedLM(lambda chat: "never")
    again._cache = LMCache(again.key, root=tmp_path)
    assert again.complete(["d", "a"], max_new_tokens=5) == ["hi d", "hi a"]
    assert again.calls == []  # every answer stored once, whatever the write rhythm
    assert len(list((tmp_path / lm.key).glob("*.json"))) == (4 if every_s == 0 else 1)


def test_stopped_transformers_generation_resumes_with_the_same_answers(tmp_path, monkeypatch):
    # bf16, where an answer can depend on its batch: the resumed call must rebuild the
    # batches of the unstopped one
    prompts = [*PROMPTS, "Name a large animal."]
    bf16 = HFLanguageModel("smollm2-135m", batch_size=2, dtype="bfloat16", cache=False)
    whole = bf16.complete(prompts, max_new_tokens=24)
    bf16._cache = LMCache(bf16.key, root=tmp_path)
    bf16.cache_every_s = 0.0
    generate = bf16.model.generate

    batches = []

    def stop_after_one_batch(**kw):  # Ctrl-C while the second batch decodes
        batches.append(kw)
        if len(batches) == 2:
            raise KeyboardInterrupt
        return generate(**kw)

    monkeypatch.setattr(bf16.model, "generate", stop_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        bf16.complete(prompts, max_new_tokens=24)
    shards = sorted((tmp_path / bf16.key).glob("*.json"))
    assert len(shards) == 2  # the first batch's two answers
    batches.clear()
    with pytest.raises(KeyboardInterrupt):  # sampled: seeded per batch, stored at the end
        bf16.generate(prompts, max_new_tokens=4, temperature=1.0, n=2)
    assert sorted((tmp_path / bf16.key).glob("*.json")) == shards
    monkeypatch.setattr(bf16.model, "generate", generate)
    asked = []
    real = bf16._generate
    monkeypatch.setattr(
        bf16, "_generate", lambda chats, *a, **k: asked.extend(chats) or real(chats, *a, **k)
    )
    assert bf16.complete(prompts, max_new_tokens=24) == whole
    assert len(asked) == 4  # only the two unfinished batches are generated again


def test_corrupt_generation_shard_is_quarantined_and_recomputed(tmp_path, capsys):
    lm = ScriptedLM(lambda chat: "hi " + chat[-1]["content"])
    lm._cache = LMCache(lm.key, root=tmp_path)
    assert lm.complete(["a", "b"], max_new_tokens=5) == ["hi a", "hi b"]
    (shard,) = (tmp_path / lm.key).glob("*.json")
    shard.write_text(shard.read_text()[:-7])  # truncated JSON
    capsys.readouterr()

    fresh = ScriptedLM(lambda chat: "again " + chat[-1]["content"])
    fresh._cache = LMCache(fresh.key, root=tmp_path)
    assert fresh.complete(["a", "b"], max_new_tokens=5) == ["again a", "again b"]
    assert len(fresh.calls) == 2  # recomputed, not a crash and not a stale value
    err = capsys.readouterr().err
    assert err.count("cache shard is damaged") == 1 and "\n" not in err.strip()
    assert (tmp_path / lm.key / (CORRUPT_PREFIX + shard.name)).exists()

    third = ScriptedLM(lambda chat: "never")
    third._cache = LMCache(third.key, root=tmp_path)
    assert third.complete(["b", "a"], max_new_tokens=5) == ["again b", "again a"]
    assert third.calls == [] and capsys.readouterr().err == ""


def test_cache_key_covers_prompt_truncation(lm):
    short = HFLanguageModel("smollm2-135m", max_length=12, cache=False)
    assert short.key != lm.key
    assert HFLanguageModel("smollm2-135m", max_length=2048, cache=False).key == lm.key
    short._model, short._tok = lm.model, lm.tokenizer  # same weights, shorter prompts
    pair = (PROMPTS[0], "Paris.")
    assert short.logprobs(*pair) != lm.logprobs(*pair)  # so max_length changes outputs


def test_bad_requests_are_clear_errors(lm):
    with pytest.raises(DataError, match="prompt 1 is empty"):
        lm.complete(["ok", "  "])
    with pytest.raises(DataError, match="list of prompts"):
        lm.complete("just a string")
    with pytest.raises(BackendError, match="cannot fine-tune"):
        ScriptedLM().__class__.__mro__[1].sft(ScriptedLM(), [("a", "b")])
    with pytest.raises(DataError, match="SFT: unknown parameter 'epochz'"):
        lm.sft([("a", "b")], epochz=1)
    with pytest.raises(DataError, match="not a causal language model"):
        HFLanguageModel("minilm-l6")


def test_geval_judge_scores_from_real_logprobs(lm):
    """The batched G-Eval score equals the one computed from one-by-one log-probs of the
    ten replies (catches a mix-up of prompts and scores in the batch)."""
    from w2s.graders.judge import JUDGE_SYSTEM, LLMJudge, expected_score

    rubric = [
        "Rate from 10 down to 1 how polite this is: 'Thank you so much!' Reply 'Score: N'.",
        "Rate from 10 down to 1 how polite this is: 'Go away.' Reply 'Score: N'.",
    ]
    got = LLMJudge(lm).expected(rubric)
    for prompt, score in zip(rubric, got, strict=True):
        lp = {str(s): lm.logprobs(prompt, f"Score: {s}", system=JUDGE_SYSTEM) for s in range(1, 11)}
        assert score == pytest.approx(expected_score(lp), abs=1e-3)
        assert 1 <= score <= 10
    assert got[0] != pytest.approx(got[1], abs=1e-3)  # the two answers are told apart
