import json

import pandas as pd
import pytest

from w2s.data import load_task
from w2s.errors import DataError, UnknownNameError


def test_bigbench_fixed_choice_task():
    task = load_task("fever")
    assert task.kind == "classification" and task.classes == ["false", "true"]
    assert len(task.df) > 6000
    assert "claim" in task.df["text"].iloc[0]


def test_bigbench_class_subset_and_domains():
    task = load_task("bigbench:multiemo/reviews_text_en?classes=positive,negative")
    assert task.classes == ["positive", "negative"]
    assert set(task.df["label"]) == {0, 1}
    sent = load_task("sentiment")
    assert set(sent.df["domain"]) == {
        "hotels_sentence_en",
        "medicine_sentence_en",
        "products_sentence_en",
        "reviews_sentence_en",
    }


def test_bigbench_parent_task_keeps_subtasks_as_domains():
    task = load_task("bigbench:fact_checker")
    assert {"fever", "politifact"} <= set(task.df["domain"])


def test_bigbench_per_item_choices_are_binarised_in_pairs():
    task = load_task("math-qa")
    assert task.classes == ["incorrect", "correct"]
    pairs = task.df.groupby("group")["label"].agg(sorted)
    assert all(p == [0, 1] for p in pairs.head(100))
    assert "\nAnswer: " in task.df["text"].iloc[0]


def test_unknown_bigbench_task_and_class():
    with pytest.raises(UnknownNameError, match="unknown BIG-bench task"):
        load_task("bigbench:not_a_task")
    with pytest.raises(DataError, match="unknown class 'happy'"):
        load_task("bigbench:fact_checker/fever?classes=happy,sad")


def test_file_sources(tmp_path):
    rows = [{"text": f"t{i}", "label": "pos" if i % 2 else "neg"} for i in range(20)]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows))
    task = load_task(f"file:{jsonl}")
    assert task.classes == ["neg", "pos"] and len(task.df) == 20
    csv = tmp_path / "d.csv"
    pd.DataFrame({"review": ["a", "b", "c"], "stars": [1, 2, 1]}).to_csv(csv, index=False)
    task = load_task(f"file:{csv}?text=review&label=stars")
    assert task.classes == ["1", "2"] and task.df["label"].tolist() == [0, 1, 0]


@pytest.mark.parametrize(
    "content, message",
    [
        ("text,labl\na,1\nb,0\n", "no column 'label'"),
        ("text,label\na,1\nb,1\n", "one class only"),
        ("text,label\n", "no rows"),
        ("text,label\na,1\nb,\n", "NaN"),
    ],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_task(f"file:{path}")


def test_missing_file():
    with pytest.raises(DataError, match="file not found"):
        load_task("file:/no/such/file.jsonl")


def test_local_hf_dataset(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict(
        {"sentence": ["good", "bad", "fine", "awful"], "label": [1, 0, 1, 0]},
        features=datasets.Features(
            {
                "sentence": datasets.Value("string"),
                "label": datasets.ClassLabel(names=["neg", "pos"]),
            }
        ),
    )
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "ds"))
    task = load_task(f"hf:{tmp_path / 'ds'}?text=sentence")
    assert task.classes == ["neg", "pos"] and task.df["label"].tolist() == [1, 0, 1, 0]
