"""`Task`: a validated table of examples, classification or generation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from w2s.cache import fingerprint
from w2s.errors import DataError

TaskKind = Literal["classification", "generation"]


@dataclass
class Task:
    """Examples with columns `id`, `text`, and `label` (int class index) or `target` (str).

    Optional columns: `domain` (for distribution-shift analyses) and `group` (rows that
    must land in the same split, e.g. the binarised pairs of one multiple-choice question).
    """

    name: str
    kind: TaskKind
    df: pd.DataFrame
    classes: list[str] = field(default_factory=list)
    description: str = ""

    def __post_init__(self) -> None:
        validate(self)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        cols = [c for c in ("id", "text", "label", "target") if c in self.df]
        return fingerprint(self.name, self.df[cols].astype(str).values.tolist())


def validate(task: Task) -> None:
    """Raise `DataError` (one line) for empty, NaN, unlabelled or single-class data."""
    df = task.df
    where = f"task '{task.name}'"
    if len(df) == 0:
        raise DataError(f"{where} has no examples")
    for col in ("id", "text"):
        if col not in df:
            raise DataError(f"{where} lacks column '{col}' (columns: {', '.join(df.columns)})")
    if df["text"].isna().any():
        raise DataError(f"{where} has {int(df['text'].isna().sum())} missing (NaN) texts")
    if df["id"].duplicated().any():
        raise DataError(
            f"{where} has duplicate ids, e.g. '{df['id'][df['id'].duplicated()].iloc[0]}'"
        )
    if task.kind == "classification":
        if "label" not in df:
            raise DataError(f"{where} lacks column 'label'")
        if df["label"].isna().any():
            raise DataError(f"{where} has {int(df['label'].isna().sum())} missing (NaN) labels")
        present = sorted(set(df["label"].astype(int)))
        if len(task.classes) < 2 or len(present) < 2:
            only = task.classes[present[0]] if present and task.classes else "?"
            raise DataError(f"{where} has one class only ('{only}'): W2S needs at least two")
        if present[0] < 0 or present[-1] >= len(task.classes):
            raise DataError(f"{where} has labels outside 0..{len(task.classes) - 1}")
    elif "target" not in df:
        raise DataError(f"{where} is a generation task but lacks column 'target'")
