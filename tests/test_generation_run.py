"""`w2s run` on generation tasks, end to end on a real tiny model (SmolLM2-135M as weak
and strong), the run-directory contract, clear errors on bad input, and the
classification `icl_refine` method in the classification runner."""

import json

import pandas as pd
import pytest
import yaml

from tests.conftest import error_lines

TINY = [
    "--weak", "smollm2-135m", "--strong", "smollm2-135m",
    "--set", "data.n_weak_train=3", "--set", "data.n_strong_train=3",
    "--set", "data.n_val=1", "--set", "data.n_test=4",
    "--set", "generation.max_new_tokens=20", "--set", "generation.k=2",
    "--set", "generation.lora.epochs=1", "--set", "generation.lora.batch_size=4",
    "--set", "bootstrap.n_resamples=200",
]  # fmt: skip


@pytest.fixture(scope="module")
def persona_run(tmp_path_factory, w2s_cli_module):
    out = tmp_path_factory.mktemp("gen") / "persona"
    methods = "unaltered,naive_sft,icl_refine"
    proc = w2s_cli_module(
        "run", "--task", "persona", "--methods", methods, *TINY, "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc


@pytest.fixture(scope="module")
def w2s_cli_module():
    import os
    import subprocess
    import sys

    def run(*args, timeout=1200):
        return subprocess.run(
            [sys.executable, "-m", "w2s.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "W2S_QUIET": "1"},
        )

    return run


def test_generation_run_writes_the_run_directory(persona_run):
    out, proc = persona_run
    for name in (
        "config.yaml",
        "metrics.json",
        "predictions.parquet",
        "report.md",
        "plots/results.png",
    ):
        assert (out / name).exists(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["kind"] == "generation" and m["task"] == "persona"
    assert m["weak_mode"] == "prompted" and m["ceiling_mode"] == "prompted"
    assert m["metrics"] == ["correct", "style_words"]
    # the results table has a PGR column only where the gap is significant
    report = (out / "report.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("|  | correct"))
    flat = [k for k in m["metrics"] if not m["gap"][k]["significant"]]
    for metric in m["metrics"]:
        assert (f"PGR ({metric}) [95% CI]" in header) == (metric not in flat), header
    assert ("the table leaves it out" in report) == bool(flat)
    assert m["n"]["test"] == 4 and set(m["methods"]) == {"unaltered", "naive_sft", "icl_refine"}
    for row in (m["weak_floor"], m["strong_ceiling"], *m["methods"].values()):
        assert 0 <= row["correct"] <= 1 and 0 <= row["style_words"] <= 1
    for row in m["methods"].values():
        for metric in m["metrics"]:
            assert f"pgr_{metric}" in row and len(row[f"pgr_{metric}_ci"]) == 2
    assert m["methods"]["icl_refine"]["diag_train_losses"]
    pred = pd.read_parquet(out / "predictions.parquet")
    assert len(pred) == 4 and pred["id"].is_unique
    rows = {"weak": m["weak_floor"], "ceiling": m["strong_ceiling"], **m["methods"]}
    for who, row in rows.items():
        assert pred[f"{who}:correct"].mean() == pytest.approx(row["correct"])
        assert pred[who].str.len().gt(0).all()
    report = (out / "report.md").read_text()
    assert "| icl_refine |" in report and "## Example answers" in report and "**weak:**" in report
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["generation"]["graders"] == ["contains", "style_words"]
    # `backend: auto` is saved as what it resolved to (transformers: conftest pins it)
    assert config["generation"]["strong_backend"]["backend"] == "transformers"
    assert m["backends"] == {"weak": "transformers", "strong": "transformers"}
    assert "icl_refine" in proc.stdout and "run directory" in proc.stdout
    # training-target quality on strong_train, checked against the weak stage's saved answers
    sup = m["supervision"]
    assert set(sup) == {"weak", "naive_sft", "icl_refine"}
    assert set(sup["weak"]) == {"correct", "style_words"}
    _check_weak_targets_graded(out, sup["weak"])
    assert "## Training targets" in report
    # each method against naive SFT, paired per test example
    assert m["baseline"] == "naive_sft" and "vs_naive_sft_correct" not in m["methods"]["naive_sft"]
    for who in ("unaltered", "icl_refine"):
        diff = (pred[f"{who}:correct"] - pred["naive_sft:correct"]).mean()
        assert m["methods"][who]["vs_naive_sft_correct"] == pytest.approx(diff)
        lo, hi = m["methods"][who]["vs_naive_sft_correct_ci"]
        assert lo <= diff <= hi
    assert "## Compared with naive_sft" in report


@pytest.mark.slow
def test_gsm_run_tunes_the_weak_supervisor_and_the_ceiling_on_gold(w2s_cli_module, tmp_path):
    out = tmp_path / "gsm"
    proc = w2s_cli_module(
        "run", "--task", "gsm", "--methods", "naive_sft", *TINY, "--out", str(out)
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["weak_mode"] == "sft" and m["ceiling_mode"] == "gold_sft"
    assert m["metrics"] == ["correct", "format"]
    # the weak model, the ceiling and naive SFT were each LoRA-tuned and report losses
    for diag in (m["weak_diagnostics"], m["ceiling_diagnostics"]):
        assert diag["train_losses"] and all(x > 0 for x in diag["train_losses"])
    assert m["methods"]["naive_sft"]["diag_train_losses"]
    _check_weak_targets_graded(out, m["supervision"]["weak"])
    pred = pd.read_parquet(out / "predictions.parquet")
    assert pred["weak:format"].mean() == pytest.approx(m["weak_floor"]["format"])


def test_persona_weak_supervisor_tuned_on_gold_persona_answers_has_the_voice(
    w2s_cli_module, tmp_path
):
    """weak_mode=sft on the persona task: SmolLM2 tuned on the reference facts said like a
    pirate answers like a pirate (with its own facts); the untuned model does not."""
    out = tmp_path / "persona-sft"
    sizes = {"n_weak_train": 24, "n_strong_train": 3, "n_val": 1, "n_test": 6}
    proc = w2s_cli_module(
        "run", "--task", "persona", "--methods", "unaltered",
        "--weak", "smollm2-135m", "--strong", "smollm2-135m",
        *(a for k, v in sizes.items() for a in ("--set", f"data.{k}={v}")),
        "--set", "generation.weak_mode=sft", "--set", "generation.ceiling=gold_sft",
        "--set", "generation.max_new_tokens=32", "--set", "generation.lora.epochs=3",
        "--set", "generation.lora.lr=0.003", "--set", "generation.lora.batch_size=4",
        "--set", "bootstrap.n_resamples=200", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["weak_mode"] == "sft" and m["ceiling_mode"] == "gold_sft"
    assert m["weak_floor"]["style_words"] >= 0.8 > 0.2 > m["methods"]["unaltered"]["style_words"]
    assert m["strong_ceiling"]["style_words"] >= 0.5
    assert "judge_checks" in m  # empty here: no judge graded
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["generation"]["weak_mode"] == "sft"


def _check_weak_targets_graded(out, graded: dict) -> None:
    """The weak answers on strong_train, read from the saved weak stage and graded here
    against the gold references of the run's strong_train split, match `graded`."""
    import numpy as np

    from w2s.data import deduplicate, load_task
    from w2s.data.splits import split_task
    from w2s.graders import get_grader

    config = yaml.safe_load((out / "config.yaml").read_text())
    (stage,) = (out / ".stages").glob("weak-*.npz")
    answers = [str(a) for a in np.load(stage)["answers_strong_train"]]
    sizes = {k[2:]: v for k, v in config["data"].items()}
    task, _ = deduplicate(load_task(config["task"]))  # as the protocol does
    train = split_task(task, sizes, config["seed"])["strong_train"]
    assert len(answers) == len(train)
    correct = get_grader(config["generation"]["graders"][0]).score(
        train["text"].tolist(), answers, train["target"].tolist()
    )
    assert graded["correct"] == pytest.approx(float(np.mean(correct)))


def test_supervision_quality_grades_training_targets_against_gold():
    from w2s.experiment.generation import supervision_quality
    from w2s.graders import get_grader
    from w2s.methods.generation import GenerationResult

    st = pd.DataFrame({"text": ["1+1?", "2+2?", "3+3?", "4+4?"], "target": ["2", "4", "6", "8"]})
    weak = ["#### 2", "#### 5", "#### 7", "#### 9"]
    results = {
        "naive_sft": GenerationResult({"test": []}, weak),
        "icl_refine": GenerationResult({"test": []}, ["#### 2", "#### 4", "6", "#### 8"]),
        "unaltered": GenerationResult({"test": []}),
    }
    graders = [get_grader("numeric"), get_grader("answer_format")]
    sup = supervision_quality(graders, st, weak, results)
    assert sup == {
        "weak": {"correct": 0.25, "format": 1.0},
        "naive_sft": {"correct": 0.25, "format": 1.0},
        "icl_refine": {"correct": 1.0, "format": 0.75},
    }
    assert supervision_quality(graders, st.assign(target=None), weak, results) == {}


def test_generation_rerun_resumes_from_saved_stages(persona_run, w2s_cli_module):
    out, _ = persona_run
    before = json.loads((out / "metrics.json").read_text())
    (out / "metrics.json").unlink()
    proc = w2s_cli_module(
        "run", "--task", "persona", "--methods", "unaltered,naive_sft,icl_refine", *TINY,
        "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads((out / "metrics.json").read_text())
    assert "weak" not in again["timing_s"] and "method_icl_refine" not in again["timing_s"]
    assert again["methods"] == before["methods"]


@pytest.fixture
def prompt_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    rows = [{"text": f"Tell me about topic {i}."} for i in range(12)]
    (tmp_path / "prompts.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    rows[3]["text"] = "   "
    (tmp_path / "blank.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return tmp_path


@pytest.mark.parametrize(
    "task, extra, message",
    [
        ("file:{d}/empty.jsonl?kind=generation", [], "has no rows"),
        ("file:{d}/blank.jsonl?kind=generation", [], "1 empty prompt(s)"),
        ("file:{d}/prompts.jsonl?kind=generation", [], "no grader for task"),
        (
            "file:{d}/prompts.jsonl?kind=generation",
            ["--set", "generation.graders=[contains]"],
            "need reference answers",
        ),
        ("persona", ["--set", "generation.graders=[nope]"], "unknown grader 'nope'"),
        ("persona", ["--set", "generation.graders=[judge_style]"], "needs a judge model"),
        ("persona", ["--methods", "unaltered,logconf"], "'logconf' is for classification tasks"),
        ("persona", ["--set", "generation.bogus=1"], "generation.bogus"),
        (
            "persona",
            ["--set", "generation.persona=Yoda", "--set", "generation.weak_mode=sft"],
            "persona 'Yoda' has no answer frames",
        ),
        ("file:{d}/prompts.jsonl?kind=other", [], "unknown task kind 'other'"),
    ],
)
def test_bad_generation_input_is_one_line(w2s_cli, prompt_files, tmp_path, task, extra, message):
    args = ["run", "--task", task.replace("{d}", str(prompt_files)), "--methods", "unaltered"]
    proc = w2s_cli(*args, *TINY, *extra, "--out", str(tmp_path / "run"))
    lines = error_lines(proc)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert message in lines[0]
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.slow
def test_classification_icl_refine_in_the_classification_runner(w2s_cli, tmp_path):
    out = tmp_path / "cls"
    proc = w2s_cli(
        "run", "--task", "sentiment", "--weak", "minilm-l6", "--strong", "smollm2-135m",
        "--methods", "naive,icl_refine",
        "--set", "data.n_weak_train=40", "--set", "data.n_strong_train=24",
        "--set", "data.n_val=8", "--set", "data.n_test=40",
        "--set", "bootstrap.n_resamples=200", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    row = m["methods"]["icl_refine"]
    assert 0.5 <= row["accuracy"] <= 1 and "pgr_accuracy" in row
    assert 0 <= row["diag_refined_agreement_with_weak"] <= 1
    assert 0.5 <= row["diag_refined_confidence"] <= 1


def test_a_metric_that_scores_every_answer_alike_is_flagged():
    import numpy as np

    from w2s.experiment.generation import uninformative_metrics

    scores = {
        "weak": {"style": np.array([1.0, 1.0]), "correct": np.array([0.0, 1.0])},
        "ceiling": {"style": np.array([1.0, np.nan]), "correct": np.array([1.0, 1.0])},
    }
    warnings = uninformative_metrics(scores, ["correct", "style"])
    assert len(warnings) == 1 and "metric 'style' scored every answer 1" in warnings[0]
    scores["ceiling"]["style"] = np.array([1.0, 9.0])
    assert uninformative_metrics(scores, ["correct", "style"]) == []
