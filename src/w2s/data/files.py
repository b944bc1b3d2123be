"""Tasks from local files (JSONL, JSON, CSV, TSV, Parquet) and Hugging Face datasets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from w2s.data.task import Task
from w2s.errors import DataError, UnknownNameError
from w2s.zoo.resolve import looks_like_path


def frame_to_task(
    name: str,
    df: pd.DataFrame,
    text: str = "text",
    label: str = "label",
    class_names: list[str] | None = None,
) -> Task:
    """Turn a table with a text column and a label (or `target`) column into a `Task`."""
    cols = ", ".join(map(str, df.columns))
    if text not in df:
        raise DataError(f"{name} has no column '{text}' (columns: {cols})")
    _check_scalars(name, df, text, "text")
    if label not in df and "target" in df:
        out = pd.DataFrame({"text": df[text], "target": df["target"]})
        out["id"] = df["id"].astype(str) if "id" in df else [str(i) for i in range(len(df))]
        _keep_domain(df, out)
        return Task(name, "generation", out, [])
    if label not in df:
        raise DataError(f"{name} has no column '{label}' (columns: {cols})")
    if len(df) == 0:
        raise DataError(f"{name} has no rows")
    if df[label].isna().any() or df[text].isna().any():
        raise DataError(f"{name} has missing (NaN) values in '{text}' or '{label}'")
    _check_scalars(name, df, label, "label")
    raw = df[label]
    if class_names is None:
        values = sorted(raw.unique(), key=lambda v: (not _is_int(v), str(v)))
        class_names = [str(v) for v in values]
        index = {v: i for i, v in enumerate(values)}
        if len(set(class_names)) < len(class_names):
            twice = next(c for c in class_names if class_names.count(c) > 1)
            raise DataError(f"{name}: label '{twice}' occurs with two types (e.g. 1 and \"1\")")
    else:
        index = {i: i for i in range(len(class_names))}
        outside = raw[~raw.isin(list(index))]
        if len(outside):
            raise DataError(
                f"{name} has {len(outside)} label(s) outside its {len(class_names)} class "
                f"names, e.g. {outside.iloc[0]} (an unlabelled split?)"
            )
    out = pd.DataFrame({"text": df[text].astype(str), "label": raw.map(index).astype(int)})
    out["id"] = df["id"].astype(str) if "id" in df else [str(i) for i in range(len(df))]
    _keep_domain(df, out)
    return Task(name, "classification", out, class_names)


def _check_scalars(name: str, df: pd.DataFrame, col: str, role: str) -> None:
    bad = df[col][~df[col].map(pd.api.types.is_scalar)]
    if len(bad):
        kind = type(bad.iloc[0]).__name__
        raise DataError(
            f"{name}: {role} column '{col}' holds {kind} values (row {bad.index[0]}): "
            f"each {role} must be a single string or number"
        )


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _is_int(v) -> bool:
    try:
        return float(v) == int(v)
    except (TypeError, ValueError):
        return False


def _keep_domain(src: pd.DataFrame, out: pd.DataFrame) -> None:
    if "domain" in src:
        out["domain"] = src["domain"].astype(str).values


_READERS = {
    ".jsonl": lambda p: pd.read_json(p, lines=True, encoding="utf-8-sig"),
    ".json": lambda p: pd.read_json(p, encoding="utf-8-sig"),
    ".csv": lambda p: pd.read_csv(p, encoding="utf-8-sig"),
    ".tsv": lambda p: pd.read_csv(p, sep="\t", encoding="utf-8-sig"),
    ".parquet": pd.read_parquet,
}


def load_file(path: str, text: str = "text", label: str = "label", kind: str | None = None) -> Task:
    """A JSONL, JSON, CSV, TSV or Parquet file with `text` and `label` columns (names
    configurable); bad files raise one-line `DataError`s (folder, empty, not UTF-8, unparsable).

    `kind="generation"` reads prompts (`text`) with optional references (`target`) and
    gold answers (`solution`)."""
    if kind not in (None, "classification", "generation"):
        raise DataError(f"unknown task kind '{kind}' (use classification or generation)")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"file not found: {path}")
    if p.is_dir():
        raise DataError(f"{path} is a folder: file: needs a .jsonl, .csv, .tsv or .parquet file")
    if p.suffix not in _READERS:
        use = ", ".join(_READERS)
        raise DataError(f"unsupported file type '{p.suffix}' for {path} (use {use})")
    if p.stat().st_size == 0:
        raise DataError(f"file {path} is empty: it has no rows")
    try:
        df = _READERS[p.suffix](p)
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not valid UTF-8 text (byte {err.start})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"file {path} is empty: it has no rows") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise DataError(f"could not parse {path}: {_first_line(err)}") from None
    if len(df) == 0:
        raise DataError(f"file {path} has no rows")
    if kind == "generation":
        return prompts_task(f"file:{path}", df, text)
    return frame_to_task(f"file:{path}", df, text, label)


def prompts_task(name: str, df: pd.DataFrame, text: str = "text") -> Task:
    """A generation task from a table of prompts (+ optional `target`, `solution`, `id`)."""
    if text not in df:
        raise DataError(
            f"{name} has no column '{text}' (columns: {', '.join(map(str, df.columns))})"
        )
    _check_scalars(name, df, text, "text")
    out = pd.DataFrame({"text": df[text].fillna("").astype(str)})
    out["target"] = df["target"].values if "target" in df else ""
    if "solution" in df:
        out["solution"] = df["solution"].fillna("").astype(str).values
    out["id"] = df["id"].astype(str).values if "id" in df else [str(i) for i in range(len(df))]
    _keep_domain(df, out)
    return Task(name, "generation", out, [])


def load_hf(ref: str, split: str = "train", text: str = "text", label: str = "label") -> Task:
    """A Hugging Face dataset: a local `save_to_disk` folder, or a hub id when online.

    A `ref` that cannot be a hub id (see `w2s.zoo.resolve.looks_like_path`) and is not
    on disk is reported as a missing folder, without asking the hub."""
    import datasets

    local = Path(ref).expanduser()
    if local.exists():
        try:
            ds = datasets.load_from_disk(str(local))
        except Exception as err:
            raise DataError(
                f"{ref} is not a Hugging Face dataset folder (one saved by save_to_disk): "
                f"{_first_line(err)}"
            ) from None
    elif looks_like_path(ref):
        raise DataError(f"HF dataset folder not found: {ref}")
    else:
        try:
            ds = datasets.load_dataset(ref)
        except Exception as err:
            raise UnknownNameError(
                f"could not load HF dataset '{ref}': no local folder of that name, and the "
                f"hub could not provide it ({_first_line(err)})"
            ) from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(f"HF dataset '{ref}' has no split '{split}' (splits: {', '.join(ds)})")
        ds = ds[split]
    names = None
    feature = ds.features.get(label)
    if isinstance(feature, datasets.ClassLabel):
        names = list(feature.names)
    return frame_to_task(f"hf:{ref}", ds.to_pandas(), text, label, names)
