import json

import pandas as pd
import pytest

from w2s.data import Task, deduplicate, load_task, split_task
from w2s.data.dedup import normalise
from w2s.data.splits import resolve_sizes
from w2s.errors import DataError

ALL_DEFAULT = {"weak_train": None, "strong_train": None, "val": None, "test": None}


def texts_in_two_splits(parts: dict[str, pd.DataFrame]) -> set[str]:
    seen: dict[str, str] = {}
    shared = set()
    for name, df in parts.items():
        for t in set(df["text"].map(normalise)):
            if seen.setdefault(t, name) != name:
                shared.add(t)
    return shared


def test_normalise_folds_case_and_whitespace_only():
    assert normalise("  The\tCAT\n sat ") == normalise("the cat sat") == "the cat sat"
    assert normalise("ﬁne") == normalise("FINE")  # NFKC ligature, then casefold
    assert normalise("the cat.") != normalise("the cat")
    assert normalise("café") != normalise("cafe")


def test_repeated_rows_in_a_file_never_cross_splits(tmp_path):
    rows = []
    for i in range(120):
        row = {"text": f"review number {i}", "label": "pos" if i % 2 else "neg"}
        rows += [row] * (1 + i % 3)  # a third of the texts twice, a third three times
    rows.append({"text": "  REVIEW number 7 ", "label": "pos"})  # differs only by case/space
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    task = load_task(f"file:{path}")
    sizes = {"weak_train": 30, "strong_train": 30, "val": 10, "test": 30}
    assert texts_in_two_splits(split_task(task, sizes, seed=0))  # the leak being fixed
    clean, stats = deduplicate(task)
    assert stats == {
        "n_before": len(rows),
        "duplicates_dropped": len(rows) - 120,
        "conflicting_dropped": 0,
        "n_after": 120,
    }
    for seed in range(3):
        assert not texts_in_two_splits(split_task(clean, sizes, seed=seed))
    # the first copy of each text is the one kept, in file order
    assert clean.df["text"].tolist() == [f"review number {i}" for i in range(120)]


def test_conflicting_labels_drop_every_copy_and_are_counted():
    df = pd.DataFrame(
        {
            "id": [str(i) for i in range(7)],
            "text": ["good", "bad", "Good ", "meh", "meh", "MEH", "fine"],
            "label": [1, 0, 1, 1, 0, 1, 1],
        }
    )
    task, stats = deduplicate(Task("t", "classification", df, ["neg", "pos"]))
    assert task.df["text"].tolist() == ["good", "bad", "fine"]
    assert task.df["id"].tolist() == ["0", "1", "6"]
    assert stats == {"n_before": 7, "duplicates_dropped": 1, "conflicting_dropped": 3, "n_after": 3}


def test_a_task_without_duplicates_comes_back_unchanged():
    df = pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "label": [0, 1]})
    task = Task("t", "classification", df, ["n", "p"])
    out, stats = deduplicate(task)
    assert out is task and stats["n_after"] == stats["n_before"] == 2


def test_dropping_conflicts_can_leave_one_class_which_is_an_error():
    df = pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "X", "y"], "label": [0, 1, 0]})
    with pytest.raises(DataError, match="one class only"):
        deduplicate(Task("t", "classification", df, ["n", "p"]))


def mc_task(questions: list[tuple[str, str, str]]) -> Task:
    """Binarised multiple choice: (question, right answer, distractor) -> two rows a group."""
    rows = []
    for g, (q, right, wrong) in enumerate(questions):
        for answer, y in ((right, 1), (wrong, 0)):
            rows.append(
                {"id": f"{g}-{y}", "text": f"{q}\nAnswer: {answer}", "label": y, "group": f"g{g}"}
            )
    return Task("mc", "classification", pd.DataFrame(rows), ["incorrect", "correct"])


def test_groups_are_dropped_whole_and_stay_intact():
    task = mc_task(
        [
            ("2+2?", "4", "5"),
            ("3+3?", "6", "7"),
            ("2+2?", "4", "3"),  # shares its right row with group 0: dropped whole
            ("1+1?", "2", "3"),
            ("1+1?", "3", "2"),  # the same texts with opposite labels: both groups conflict
            ("5+5?", "10", "11"),
        ]
    )
    out, stats = deduplicate(task)
    assert list(dict.fromkeys(out.df["group"])) == ["g0", "g1", "g5"]
    assert out.df.groupby("group")["label"].agg(sorted).tolist() == [[0, 1]] * 3
    assert stats == {
        "n_before": 12,
        "duplicates_dropped": 2,
        "conflicting_dropped": 4,
        "n_after": 6,
    }


def test_deduplicated_groups_split_together_without_shared_texts():
    questions = [(f"q{i % 150}?", f"a{i % 150}", f"w{i}") for i in range(300)]
    task, stats = deduplicate(mc_task(questions))
    assert stats["duplicates_dropped"] == 300 and stats["n_after"] == 300
    parts = split_task(task, {"weak_train": 80, "strong_train": 80, "val": 20, "test": 80}, 0)
    assert not texts_in_two_splits(parts)
    where = {}
    for name, df in parts.items():
        for g in df["group"]:
            assert where.setdefault(g, name) == name
        assert df.groupby("group").size().eq(2).all()


def test_generation_keeps_the_first_of_each_prompt():
    df = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "text": ["What is 2+2?", "what is  2+2? ", "Name a colour.", "What is 2+2?"],
            "target": ["4", "four", "red", "4"],
        }
    )
    out, stats = deduplicate(Task("g", "generation", df))
    assert out.df["id"].tolist() == ["a", "c"] and out.df["target"].tolist() == ["4", "red"]
    assert stats == {"n_before": 4, "duplicates_dropped": 2, "conflicting_dropped": 0, "n_after": 2}


def test_real_fever_test_texts_appear_in_no_other_split():
    task = load_task("fever")
    raw = split_task(task, resolve_sizes(task, ALL_DEFAULT), seed=0)
    assert texts_in_two_splits(raw)  # BIG-bench fever repeats some claims
    clean, stats = deduplicate(task)
    assert stats["duplicates_dropped"] > 0 and stats["conflicting_dropped"] > 0
    assert (
        stats["n_after"]
        == len(clean.df)
        == stats["n_before"] - sum(stats[k] for k in ("duplicates_dropped", "conflicting_dropped"))
    )
    for seed in (0, 1):
        parts = split_task(clean, resolve_sizes(clean, ALL_DEFAULT), seed=seed)
        test = set(parts["test"]["text"].map(normalise))
        for name in ("weak_train", "strong_train", "val"):
            assert not test & set(parts[name]["text"].map(normalise)), name
