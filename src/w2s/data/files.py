"""Tasks from local files (JSONL/CSV) and Hugging Face datasets (hub ids or local copies)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from w2s.data.task import Task
from w2s.errors import DataError, UnknownNameError


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
    raw = df[label]
    if class_names is None:
        values = sorted(raw.unique(), key=lambda v: (not _is_int(v), str(v)))
        class_names = [str(v) for v in values]
        index = {v: i for i, v in enumerate(values)}
    else:
        index = {i: i for i in range(len(class_names))}
    out = pd.DataFrame({"text": df[text].astype(str), "label": raw.map(index).astype(int)})
    out["id"] = df["id"].astype(str) if "id" in df else [str(i) for i in range(len(df))]
    _keep_domain(df, out)
    return Task(name, "classification", out, class_names)


def _is_int(v) -> bool:
    try:
        return float(v) == int(v)
    except (TypeError, ValueError):
        return False


def _keep_domain(src: pd.DataFrame, out: pd.DataFrame) -> None:
    if "domain" in src:
        out["domain"] = src["domain"].astype(str).values


def load_file(path: str, text: str = "text", label: str = "label", kind: str | None = None) -> Task:
    """A JSONL or CSV file with `text` and `label` columns (names configurable).

    `kind="generation"` reads prompts (`text`) with optional references (`target`) and
    gold answers (`solution`)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"file not found: {path}")
    try:
        if p.suffix in {".jsonl", ".json"}:
            df = pd.read_json(p, lines=p.suffix == ".jsonl")
        elif p.suffix in {".csv", ".tsv"}:
            df = pd.read_csv(p, sep="\t" if p.suffix == ".tsv" else ",")
        elif p.suffix == ".parquet":
            df = pd.read_parquet(p)
        else:
            raise DataError(
                f"unsupported file type '{p.suffix}' for {path} (use .jsonl, .csv, .parquet)"
            )
    except (ValueError, pd.errors.ParserError) as err:
        raise DataError(f"could not parse {path}: {str(err).splitlines()[0]}") from None
    if len(df) == 0:
        raise DataError(f"file {path} has no rows")
    if kind == "generation":
        return prompts_task(f"file:{path}", df, text)
    if kind not in (None, "classification"):
        raise DataError(f"unknown task kind '{kind}' (use classification or generation)")
    return frame_to_task(f"file:{path}", df, text, label)


def prompts_task(name: str, df: pd.DataFrame, text: str = "text") -> Task:
    """A generation task from a table of prompts (+ optional `target`, `solution`, `id`)."""
    if text not in df:
        raise DataError(
            f"{name} has no column '{text}' (columns: {', '.join(map(str, df.columns))})"
        )
    out = pd.DataFrame({"text": df[text].fillna("").astype(str)})
    out["target"] = df["target"].values if "target" in df else ""
    if "solution" in df:
        out["solution"] = df["solution"].fillna("").astype(str).values
    out["id"] = df["id"].astype(str).values if "id" in df else [str(i) for i in range(len(df))]
    _keep_domain(df, out)
    return Task(name, "generation", out, [])


def load_hf(ref: str, split: str = "train", text: str = "text", label: str = "label") -> Task:
    """A Hugging Face dataset: a local `save_to_disk` folder, or a hub id when online."""
    import datasets

    local = Path(ref).expanduser()
    try:
        ds = datasets.load_from_disk(str(local)) if local.exists() else datasets.load_dataset(ref)
    except Exception as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise UnknownNameError(f"could not load HF dataset '{ref}': {reason}") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(f"HF dataset '{ref}' has no split '{split}' (splits: {', '.join(ds)})")
        ds = ds[split]
    names = None
    feature = ds.features.get(label)
    if isinstance(feature, datasets.ClassLabel):
        names = list(feature.names)
    return frame_to_task(f"hf:{ref}", ds.to_pandas(), text, label, names)
