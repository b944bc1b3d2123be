"""Graders: the gsm final-number check on real reasoning-gym items, reference matching,
robust judge-score parsing, and clear errors for unknown graders."""

import numpy as np
import pytest

from tests.fakes import ScriptedLM
from w2s.data.generation import load_gsm
from w2s.errors import UnknownNameError, W2SError
from w2s.graders import LLMJudge, get_grader, parse_score
from w2s.graders.deterministic import contains_reference, final_number, numbers_match


def test_gsm_grader_on_real_reasoning_gym_items():
    import reasoning_gym

    task = load_gsm(size=25, seed=3)
    grader = get_grader("numeric")
    df = task.df
    right = grader.score(df["text"], df["solution"].tolist(), df["target"].tolist())
    assert right.tolist() == [1.0] * len(df)  # every gold worked solution ends in its answer
    wrong = [
        s.rsplit("####", 1)[0] + f"#### {int(t) + 1}"
        for s, t in zip(df["solution"], df["target"], strict=True)
    ]
    assert grader.score(df["text"], wrong, df["target"].tolist()).sum() == 0
    # agrees with reasoning-gym's own checker on the extracted final numbers
    data = reasoning_gym.create_dataset("gsm_symbolic", size=25, seed=3)
    for item, sol in zip(data, df["solution"], strict=True):
        got = final_number(sol)
        assert data.score_answer(str(int(got)), item) == 1.0


def test_answer_format_grader_on_real_gsm_solutions():
    df = load_gsm(size=10, seed=4).df
    grader = get_grader("answer_format")
    assert grader.metric == "format"
    gold = grader.score(df["text"], df["solution"].tolist(), df["target"].tolist())
    assert gold.tolist() == [1.0] * len(df)  # every gold solution ends on '#### N'
    stripped = [
        s.rsplit("####", 1)[0] + f"The answer is {t}."
        for s, t in zip(df["solution"], df["target"], strict=True)
    ]
    assert grader.score(df["text"], stripped, df["target"].tolist()).sum() == 0
    odd = ["#### 12 apples", "x\n  ####  -3.5  \nthanks", "#### ", "so ####7"]
    assert grader.score([""] * 4, odd, [None] * 4).tolist() == [0.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "text, value",
    [
        ("so the total is 1,234 apples.\n#### 1234", 1234),
        ("The answer is: $56.", 56),
        ("We get \\boxed{12}", 12),
        ("first 3 then 4 and finally 7", 7),
        ("no digits here", None),
    ],
)
def test_final_number(text, value):
    assert final_number(text) == value


def test_numbers_match_and_contains():
    assert numbers_match("Total: 12.0 items", "12") == 1.0
    assert numbers_match("Total: 13", "12") == 0.0
    assert contains_reference("Arr, 'tis Spain, matey!", "Spain") == 1.0
    assert contains_reference("Arr, 'tis Spainland", "Spain") == 0.0  # whole words only
    assert contains_reference("a comedy of sorts", ["parody", "comedy"]) == 1.0
    assert contains_reference("Ça va, São Paulo!", "sao paulo") == 1.0
    assert contains_reference("anything", []) == 0.0


@pytest.mark.parametrize(
    "text, score",
    [
        ("Score: 7", 7),
        ("**Score:** 8/10", 8),
        ("I would rate it a 6.", 6),
        ("9/10 - great pirate voice", 9),
        ("score = seven", 7),
        ("  10\nbecause it is perfect", 10),
        ("The answer deserves an 4 out of 10", 4),
        ("Score: 42. Actually, score: 5", 5),
        ("It mentions 1999 and 2003 but no rating", None),
        ("", None),
        ("Score: N", None),
        ("On a scale from 1 to 10 I cannot say", None),
    ],
)
def test_parse_score_messy_outputs(text, score):
    assert parse_score(text) == score


def test_judge_averages_samples_and_marks_unreadable_nan():
    outputs = iter(["Score: 8", "Score: 6", "no idea", "nothing"])
    lm = ScriptedLM(lambda chat: next(outputs))
    judge = LLMJudge(lm, n=1)
    assert np.allclose(judge.rate(["a", "b"]), [8, 6])
    assert np.isnan(judge.rate(["c", "d"])).all()


def test_unknown_grader_and_missing_judge_are_clear_errors():
    with pytest.raises(UnknownNameError, match="unknown grader 'nope'.*numeric"):
        get_grader("nope")
    with pytest.raises(W2SError, match="needs a judge model"):
        get_grader("judge_style")


def test_geval_expected_score_equals_hand_computation():
    from w2s.graders.judge import expected_score

    lp = {"1": np.log(0.5), "10": np.log(0.2), "5": np.log(0.3)}
    # "Score: 1" covers "Score: 10": 0.5 - 0.2 = 0.3 is left for a plain 1
    assert expected_score(lp) == pytest.approx((0.3 * 1 + 0.2 * 10 + 0.3 * 5) / 0.8)
    assert expected_score({"3": np.log(0.1)}) == pytest.approx(3.0)
    assert np.isnan(expected_score({"2": -np.inf}))


def test_geval_graders_need_a_judge_and_report_their_own_metric():
    with pytest.raises(W2SError, match="needs a judge model"):
        get_grader("judge_style_geval")
    lm = ScriptedLM()
    grader = get_grader("judge_content_geval", judge=LLMJudge(lm))
    assert grader.metric == "content_geval" and grader.needs_reference


def test_gold_persona_answers_carry_the_fact_and_the_voice():
    from w2s.data.generation import PERSONAS, get_persona, persona_answer
    from w2s.graders.deterministic import marker_score

    pirate = PERSONAS["pirate"]
    prompt = "Complete this sentence with the right fact: The country of 1912 Summer Olympics is"
    prompt += " ..."
    refs = ["Sweden", "Kingdom of Sweden"]
    answers = {persona_answer(pirate, prompt, refs, f"id{i}") for i in range(40)}
    assert len(answers) == len(pirate.frames)  # every frame is used, chosen by the key
    for a in answers:
        assert "the country of 1912 Summer Olympics is Sweden" in a
        assert contains_reference(a, "Sweden") == 1.0
        assert marker_score(a, pirate.markers) == 1.0  # at least three pirate words
    assert persona_answer(pirate, prompt, "Sweden", "id1") == persona_answer(
        pirate, prompt, "Sweden", "id1"
    )
    with pytest.raises(W2SError, match="persona 'Yoda' has no answer frames.*weak_mode=prompted"):
        persona_answer(get_persona("Yoda"), prompt, "Sweden", "id1")


def test_score_agreement_equals_hand_computation():
    from w2s.analysis import score_agreement

    judge = np.array([1.0, 2.0, 9.0, 7.0, np.nan, 3.0])
    words = np.array([0.0, 1 / 3, 1.0, 2 / 3, 1.0, 0.0])
    out = score_agreement(judge, words)
    # five pairs left; ranks judge (1, 2, 5, 4, 3) vs words (1.5, 3, 5, 4, 1.5)
    rj, rw = np.array([1, 2, 5, 4, 3.0]), np.array([1.5, 3, 5, 4, 1.5])
    rho = np.corrcoef(rj, rw)[0, 1]
    assert out["n"] == 5 and out["spearman"] == pytest.approx(rho)
    # positives (words > 0) judged 2, 9, 7; negatives 1, 3: 5 of 6 pairs ordered right
    assert out["auroc"] == pytest.approx(5 / 6)
    flat = score_agreement(judge, np.zeros(6))
    assert np.isnan(flat["spearman"]) and np.isnan(flat["auroc"]) and flat["n"] == 5


def test_judge_checks_pool_predictors_and_pair_each_judge_with_its_grader():
    from w2s.data.generation import PERSONAS
    from w2s.experiment.generation import judge_checks

    judge = LLMJudge(ScriptedLM())
    names = ["contains", "style_words", "judge_style", "judge_style_geval", "judge_content"]
    graders = [get_grader(n, judge=judge, persona=PERSONAS["pirate"]) for n in names]
    scores = {
        "weak": {"correct": np.array([0.0, 1]), "style_words": np.array([1.0, 1]),
                 "style": np.array([9.0, 8]), "style_geval": np.array([2.0, 3]),
                 "content": np.array([2.0, 9])},
        "ceiling": {"correct": np.array([1.0, 1]), "style_words": np.array([0.0, 0]),
                    "style": np.array([2.0, 1]), "style_geval": np.array([4.0, 5]),
                    "content": np.array([8.0, 7])},
    }  # fmt: skip
    checks = judge_checks(graders, scores)
    assert set(checks) == {"style", "style_geval", "content"}
    assert checks["style"]["against"] == "style_words" and checks["style"]["n"] == 4
    assert checks["style"]["auroc"] == 1.0 and checks["style_geval"]["auroc"] == 0.0
    assert checks["content"]["against"] == "correct" and checks["content"]["auroc"] == 1.0
