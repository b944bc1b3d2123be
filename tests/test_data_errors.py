"""Bad task specs and bad data end in one clear `W2SError`, never a traceback."""

import json

import pytest

from w2s.data import load_task
from w2s.errors import DataError, UnknownNameError, W2SError


def jsonl(rows) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


FILES = {
    "folder.jsonl/": None,
    "plain_folder/": None,
    "list_labels.jsonl": jsonl([{"text": "a", "label": [1, 2]}, {"text": "b", "label": [0]}]),
    "dict_labels.jsonl": jsonl([{"text": "a", "label": {"x": 1}}, {"text": "b", "label": 0}]),
    "list_texts.jsonl": jsonl([{"text": ["a"], "label": 1}, {"text": "b", "label": 0}]),
    "latin1.csv": "text,label\ncafé,1\nthé,0\n".encode("latin-1"),
    "latin1.jsonl": '{"text": "café", "label": 1}\n'.encode("latin-1"),
    "empty.csv": b"",
    "empty.jsonl": b"",
    "blank.csv": b"\n\n",
    "header_only.csv": b"text,label\n",
    "broken.jsonl": b'{"text": "a", "label": 1}\n{"text": "b", "label"\n',
    "broken.parquet": b"not a parquet file",
    "data.xlsx": b"PK",
    "ok.jsonl": jsonl([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]),
    "prompts.jsonl": jsonl([{"text": "Say hi."}, {"text": "Say bye."}]),
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    for name, content in FILES.items():
        if content is None:
            (root / name).mkdir()
        else:
            (root / name).write_bytes(content)
    return root


CASES = [
    ("file:{d}/folder.jsonl", DataError, "is a folder: file: needs a .jsonl, .csv"),
    ("file:{d}/plain_folder", DataError, "plain_folder is a folder"),
    ("file:{d}/nope.csv", DataError, "file not found: {d}/nope.csv"),
    ("file:{d}/list_labels.jsonl", DataError, "label column 'label' holds list values (row 0)"),
    ("file:{d}/dict_labels.jsonl", DataError, "label column 'label' holds dict values (row 0)"),
    ("file:{d}/list_texts.jsonl", DataError, "text column 'text' holds list values (row 0)"),
    ("file:{d}/latin1.csv", DataError, "latin1.csv is not valid UTF-8 text (byte 14)"),
    ("file:{d}/latin1.jsonl", DataError, "latin1.jsonl is not valid UTF-8 text (byte 13)"),
    ("file:{d}/empty.csv", DataError, "empty.csv is empty: it has no rows"),
    ("file:{d}/empty.jsonl", DataError, "empty.jsonl is empty: it has no rows"),
    ("file:{d}/blank.csv", DataError, "blank.csv is empty: it has no rows"),
    ("file:{d}/header_only.csv", DataError, "header_only.csv has no rows"),
    ("file:{d}/broken.jsonl", DataError, "could not parse {d}/broken.jsonl: "),
    ("file:{d}/broken.parquet", DataError, "could not parse {d}/broken.parquet: "),
    ("file:{d}/data.xlsx", DataError, "unsupported file type '.xlsx'"),
    ("file:{d}/ok.jsonl?kind=table", DataError, "unknown task kind 'table'"),
    ("file:{d}/ok.jsonl?lable=x", UnknownNameError, "unknown option 'lable' in task spec"),
    ("file:{d}/ok.jsonl?classes=x,z", DataError, "unknown class 'z' (classes: x, y)"),
    ("file:{d}/ok.jsonl?classes=x,x", DataError, "classes= names 'x' twice"),
    ("file:{d}/prompts.jsonl?kind=generation&classes=x,y", DataError, "needs a classification"),
    ("fever?split=test", UnknownNameError, "unknown option 'split'"),
    ("hf:./no_such_dataset_w2s", DataError, "HF dataset folder not found: ./no_such_dataset_w2s"),
    ("hf:{d}/nope", DataError, "HF dataset folder not found: {d}/nope"),
    ("hf:~/no/such/ds", DataError, "HF dataset folder not found: ~/no/such/ds"),
    ("hf:{d}/plain_folder", DataError, "plain_folder is not a Hugging Face dataset folder"),
    ("hf:{d}/ok.jsonl", DataError, "ok.jsonl is not a Hugging Face dataset folder"),
    ("nosuch:thing", UnknownNameError, "unknown task source 'nosuch:'"),
]


@pytest.mark.parametrize("spec, error, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_error(data_dir, spec, error, message):
    with pytest.raises(W2SError) as info:
        load_task(spec.replace("{d}", str(data_dir)))
    text = str(info.value)
    assert type(info.value) is error, text
    assert message.replace("{d}", str(data_dir)) in text
    assert "\n" not in text


def test_hf_labels_outside_the_class_names(tmp_path):
    import datasets

    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, -1]}, features)
    ds.save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError, match=r"1 label\(s\) outside its 2 class names, e.g. -1"):
        load_task(f"hf:{tmp_path / 'ds'}")


def test_a_utf8_bom_is_not_part_of_the_first_column(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,label\nsun,1\nrain,0\n".encode())
    assert load_task(f"file:{path}").df["text"].tolist() == ["sun", "rain"]
