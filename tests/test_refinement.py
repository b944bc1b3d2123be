"""The refinement family's prompts: leave-one-out demonstrations within batches of k+1,
style inference, ask-to-improve; W2S methods never see gold answers."""

import pytest

from tests.fakes import ScriptedLM
from w2s.methods import GenerationContext, get_method
from w2s.methods.refine import (
    demo_indices,
    extract_style,
    icl_prompts,
    refinement_batches,
)

PROMPTS = [f"question number {i}?" for i in range(11)]
ANSWERS = [f"weak answer {i}" for i in range(11)]


@pytest.mark.parametrize("n, k", [(11, 3), (10, 4), (5, 4), (12, 1)])
def test_batches_partition_the_items(n, k):
    batches = refinement_batches(n, k, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(n))
    assert all(len(b) == k + 1 for b in batches[:-1])


def test_icl_prompts_hold_exactly_the_other_k_items_of_the_batch():
    k = 3
    chats, demos = icl_prompts(PROMPTS, ANSWERS, k, seed=1)
    batches = refinement_batches(len(PROMPTS), k, seed=1)
    batch_of = {i: b for b in batches for i in b}
    for i, (chat, d) in enumerate(zip(chats, demos, strict=True)):
        assert i not in d and len(d) == k and len(set(d)) == k
        if len(batch_of[i]) == k + 1:
            assert set(d) == set(batch_of[i]) - {i}
        users = [m["content"] for m in chat if m["role"] == "user"]
        assistants = [m["content"] for m in chat if m["role"] == "assistant"]
        assert users[-1] == PROMPTS[i]
        assert users[:-1] == [PROMPTS[j] for j in d]
        assert assistants == [ANSWERS[j] for j in d]
        text = " | ".join(m["content"] for m in chat[:-1])
        assert PROMPTS[i] not in text and ANSWERS[i] not in text
        assert chat[-1] == {"role": "user", "content": PROMPTS[i]}


def test_demo_indices_never_include_the_item_itself():
    for n, k in [(2, 4), (7, 2), (9, 4)]:
        for i, d in enumerate(demo_indices(n, k)):
            assert i not in d and len(d) == min(k, n - 1)


def test_extract_style():
    assert extract_style("Sure! The used style is: pirate talk, short.\nMore") == (
        "The used style is: pirate talk, short."
    )
    assert extract_style("Pirate slang, arr.") == "The used style is: Pirate slang, arr."


def _ctx(lm, **kw):
    return GenerationContext(
        prompts={"strong_train": PROMPTS[:8], "test": PROMPTS[8:]},
        weak_answers={"strong_train": ANSWERS[:8], "test": ANSWERS[8:]},
        strong=lm,
        k=3,
        max_new_tokens=16,
        **kw,
    )


def test_icl_refine_tunes_on_refined_answers_not_weak_ones():
    lm = ScriptedLM(lambda chat: f"refined {len(chat)}")
    res = get_method("icl_refine", "generation").run(_ctx(lm))
    assert res.answers["test"] == ["tuned"] * 3
    assert [p for p, _ in lm.tuned_on] == PROMPTS[:8]
    assert all(t.startswith("refined") for _, t in lm.tuned_on)
    assert res.train_targets == [t for _, t in lm.tuned_on]
    assert res.diagnostics["refined_changed"] == 1.0


def test_infer_respond_states_a_style_then_answers_with_it_as_system_prompt():
    def reply(chat):
        if "The used style is" in chat[-1]["content"]:
            return "The used style is: terse pirate."
        return f"[{chat[0]['content']}] ok"

    lm = ScriptedLM(reply)
    res = get_method("infer_respond", "generation", finetune=False).run(_ctx(lm))
    assert res.answers["test"] == ["[The used style is: terse pirate.] ok"] * 3
    style_asks = [c for c in lm.calls if "The used style is" in c[-1]["content"]]
    assert style_asks and all("weak answer" in c[-1]["content"] for c in style_asks)


def test_ask_improve_shows_the_weak_answer():
    lm = ScriptedLM(lambda chat: "better")
    res = get_method("ask_improve", "generation", finetune=False).run(_ctx(lm))
    assert res.answers["test"] == ["better"] * 3
    asks = [c[-1]["content"] for c in lm.calls]
    assert all(f"Answer: {a}" in q for q, a in zip(asks, ANSWERS[8:], strict=True))


def test_method_params_are_checked_before_any_work():
    from w2s.errors import UnknownNameError, W2SError

    with pytest.raises(W2SError, match="method 'icl_refine': unknown parameter 'kk'"):
        get_method("icl_refine", "generation", kk=3)
    with pytest.raises(W2SError, match="method 'icl_refine': k: Input should be greater"):
        get_method("icl_refine", "generation", k=0)
    with pytest.raises(W2SError, match="method 'ask_improve': finetune: Input should be a valid"):
        get_method("ask_improve", "generation", finetune="maybe")
    with pytest.raises(W2SError, match="method 'logconf': aux_max: Input should be a valid"):
        get_method("logconf", "classification", aux_max="abc")
    with pytest.raises(W2SError, match="method 'logconf': warmup: Input should be greater"):
        get_method("logconf", "classification", warmup=-3)
    with pytest.raises(UnknownNameError, match="unknown method 'nope' for generation tasks"):
        get_method("nope", "generation")
    with pytest.raises(UnknownNameError, match="'naive' is for classification tasks"):
        get_method("naive", "generation")
