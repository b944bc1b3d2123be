"""Drop duplicate texts before splitting, so that no text can land in two splits.

Texts are compared after `normalise`: Unicode NFKC, `casefold`, every run of whitespace
collapsed to one space, ends stripped. So "The  cat\n" and "the cat" are one text, but
punctuation and accents still tell texts apart.
"""

from __future__ import annotations

import unicodedata

import pandas as pd

from w2s.data.task import Task


def normalise(text: object) -> str:
    """The key texts are compared by: NFKC, casefolded, whitespace collapsed and stripped."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).casefold().split())


def deduplicate(task: Task) -> tuple[Task, dict[str, int]]:
    """`task` without duplicate texts (rows kept in their order), and what was dropped.

    - classification: a text that occurs with two or more different labels is dropped
      everywhere (all its copies); of a text with one label, the first row is kept.
    - classification with `group` (rows that must share a split): a group holding a
      conflicting text is dropped whole; a later group with a text that a kept group
      already has is dropped whole, so groups stay intact.
    - generation: the first row of each prompt is kept (targets are not compared).

    Stats, all counts of rows: `n_before`, `duplicates_dropped` (later copies),
    `conflicting_dropped` (every copy of a text with conflicting labels), `n_after`;
    `n_before == duplicates_dropped + conflicting_dropped + n_after`. With groups, both
    drop counts include every row of the groups dropped. Raises `DataError` (via `Task`)
    if what is left is unusable, e.g. one class only.

    `split_task` does not call this: call it first, then `resolve_sizes` on its result.
    """
    df = task.df.reset_index(drop=True)
    keys = df["text"].map(normalise)
    conflicting = pd.Series(False, index=df.index)
    if task.kind == "classification":
        n_labels = df["label"].groupby(keys).transform("nunique")
        conflicting = n_labels > 1
    if "group" in df:
        conflicting = df["group"].isin(set(df.loc[conflicting, "group"]))
        duplicate = pd.Series(False, index=df.index)
        rest = ~conflicting
        duplicate[rest] = _later_groups(df.loc[rest, "group"], keys[rest])
    else:
        duplicate = keys.duplicated() & ~conflicting
    kept = df[~conflicting & ~duplicate].reset_index(drop=True)
    stats = {
        "n_before": len(df),
        "duplicates_dropped": int(duplicate.sum()),
        "conflicting_dropped": int(conflicting.sum()),
        "n_after": len(kept),
    }
    if len(kept) == len(df):
        return task, stats
    out = Task(task.name, task.kind, kept, list(task.classes), task.description)
    return out, stats


def _later_groups(groups: pd.Series, keys: pd.Series) -> pd.Series:
    """Rows of the groups (taken in order of first row) with a text an earlier kept group has."""
    seen: set[str] = set()
    dropped: set = set()
    members = keys.groupby(groups, sort=False).agg(list)
    for group, texts in members.items():
        if seen.intersection(texts):
            dropped.add(group)
        else:
            seen.update(texts)
    return groups.isin(dropped)
