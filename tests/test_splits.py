import pandas as pd
import pytest

from w2s.data import Task, split_task
from w2s.errors import DataError


def make_task(n_per_class=(300, 500), k=2, groups=False) -> Task:
    rows = []
    for c, n in enumerate(n_per_class):
        rows += [{"id": f"c{c}-{i}", "text": f"text {c} {i}", "label": c} for i in range(n)]
    df = pd.DataFrame(rows)
    return Task("toy", "classification", df, [f"class{c}" for c in range(k)])


SIZES = {"weak_train": 100, "strong_train": 120, "val": 40, "test": 200}


def test_splits_are_deterministic_disjoint_and_balanced():
    task = make_task()
    a = split_task(task, SIZES, seed=3)
    b = split_task(task, SIZES, seed=3)
    for name in SIZES:
        assert a[name]["id"].tolist() == b[name]["id"].tolist()
        assert len(a[name]) == SIZES[name]
        counts = a[name]["label"].value_counts()
        assert counts.max() - counts.min() <= 1, name
    ids = [set(a[n]["id"]) for n in SIZES]
    assert sum(map(len, ids)) == len(set().union(*ids))


def test_other_seed_gives_other_splits():
    task = make_task()
    a = split_task(task, SIZES, seed=0)
    b = split_task(task, SIZES, seed=1)
    assert set(a["test"]["id"]) != set(b["test"]["id"])


def test_test_split_is_stable_when_train_sizes_change():
    task = make_task()
    a = split_task(task, SIZES, seed=0)
    b = split_task(task, {**SIZES, "weak_train": 50, "strong_train": 60}, seed=0)
    assert set(a["test"]["id"]) == set(b["test"]["id"])


def test_balanced_capacity_is_limited_by_minority_class():
    task = make_task((100, 1000))
    with pytest.raises(DataError, match="larger than the data"):
        split_task(task, {"weak_train": 50, "strong_train": 50, "val": 20, "test": 120}, seed=0)


def test_unset_sizes_shrink_to_fit():
    task = make_task((200, 200))
    sizes = {k: None for k in SIZES}
    parts = split_task(task, sizes, seed=0)
    assert sum(len(p) for p in parts.values()) <= 400
    assert all(len(p) > 0 for p in parts.values())


def test_empty_split_is_an_error():
    with pytest.raises(DataError, match="empty split"):
        split_task(make_task(), {**SIZES, "val": 0}, seed=0)


def test_groups_stay_together():
    rows = []
    for g in range(200):
        rows += [
            {"id": f"{g}-1", "text": f"q{g} right", "label": 1, "group": f"g{g}"},
            {"id": f"{g}-0", "text": f"q{g} wrong", "label": 0, "group": f"g{g}"},
        ]
    task = Task("mc", "classification", pd.DataFrame(rows), ["incorrect", "correct"])
    parts = split_task(task, {"weak_train": 100, "strong_train": 100, "val": 40, "test": 100}, 0)
    seen = {}
    for name, df in parts.items():
        for g in df["group"]:
            assert seen.setdefault(g, name) == name
        assert df["label"].mean() == 0.5
