"""`w2s scout` ranks tasks by the strong ceiling's advantage over the weak floor.

Synthetic tasks with gaps known by construction, all with one rule (label: "the first
thing named is an animal"): static-64d (weak) is a bag of tokens, so it cannot see word
order, while minilm-l6 (strong) can. `order` pairs an animal with a tool in both orders
(the weak floor is at chance); `content` names two animals or two tools (both models
read it off the words: no gap); `mixed` is half of each (a gap about half of `order`'s).
"""

import itertools

import numpy as np
import pandas as pd
import pytest

from tests.conftest import error_lines
from w2s.data import Task
from w2s.experiment import scout as scout_mod
from w2s.experiment.scout import EARLY, GAP, NO_GAP, ScoutSettings, run_scout
from w2s.experiment.scout_outputs import write_outputs

ANIMALS = [
    "cat",
    "dog",
    "horse",
    "cow",
    "sheep",
    "goat",
    "mouse",
    "lion",
    "tiger",
    "bear",
    "wolf",
    "fox",
    "rabbit",
    "deer",
    "duck",
    "owl",
]
TOOLS = [
    "hammer",
    "saw",
    "drill",
    "wrench",
    "chisel",
    "shovel",
    "rake",
    "ladder",
    "knife",
    "spoon",
    "broom",
    "bucket",
    "axe",
    "pliers",
    "clamp",
    "ruler",
]


def rows(pairs):
    return [(f"first the {x}, then the {y}", int(x in ANIMALS)) for x, y in pairs]


def task(name, items):
    df = pd.DataFrame(items, columns=["text", "label"])
    df.insert(0, "id", [f"{name}-{i}" for i in range(len(df))])
    return Task(name, "classification", df, ["tool first", "animal first"])


@pytest.fixture(scope="module")
def tasks():
    mixed_pairs = [*itertools.product(ANIMALS, TOOLS), *itertools.product(TOOLS, ANIMALS)]
    same = [
        *itertools.permutations(ANIMALS, 2),
        *itertools.permutations(TOOLS, 2),
    ]
    order, content = rows(mixed_pairs), rows(same)
    rng = np.random.default_rng(0)
    half = [order[i] for i in rng.permutation(len(order))[:250]]
    half += [content[i] for i in rng.permutation(len(content))[:250]]
    return {
        "content": task("content", content),
        "mixed": task("mixed", half),
        "order": task("order", order),
    }


SETTINGS = dict(weak="static-64d", strong="minilm-l6", n_train=100, n_val=50, n_test=200, seed=3)


def test_scout_ranks_known_gaps_and_marks_no_gap_then_reuses_its_cache(
    tasks, tmp_path, monkeypatch
):
    settings = ScoutSettings(**SETTINGS)
    first = run_scout(settings, tasks)
    assert [r["task"] for r in first] == ["order", "mixed", "content"]
    by = {r["task"]: r for r in first}
    assert by["order"]["status"] == GAP and by["order"]["floor_accuracy"] < 0.6
    assert by["content"]["status"] in (NO_GAP, EARLY)
    assert by["order"]["gap"] > by["mixed"]["gap"] > by["content"]["gap"]
    write_outputs(first, settings, tmp_path, 1.0)
    csv = pd.read_csv(tmp_path / "scout.csv")
    assert csv["task"].tolist() == ["order", "mixed", "content"]
    assert (tmp_path / "scout.png").stat().st_size > 0

    def no_work(*args, **kwargs):
        raise AssertionError("a repeated scout recomputed a result")

    monkeypatch.setattr(scout_mod, "features", no_work)
    monkeypatch.setattr(scout_mod.Probe, "fit", no_work)
    again = run_scout(settings, tasks)
    assert all(r["cached"] for r in again)
    keep = ["task", "gap", "gap_lo", "gap_hi", "floor_accuracy", "ceiling_accuracy", "status"]
    assert [{k: r[k] for k in keep} for r in again] == [{k: r[k] for k in keep} for r in first]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--weak", "minilm-l6", "--strong", "minilm-l6"], "the same model"),
        (["--weak", "static-64d", "--strong", "minilm-l6", "--tasks", "no_such_*"], "no BIG-bench"),
        (["--weak", "static-64d", "--strong", "minilm-l6", "--n-test", "1"], "--n-test"),
    ],
)
def test_bad_input_is_one_error_line(w2s_cli, tmp_path, args, message):
    proc = w2s_cli("scout", *args, "--out", str(tmp_path / "s"))
    lines = error_lines(proc)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert not (tmp_path / "s").exists()
