"""Deterministic graders: final-number match, answer format, reference containment,
persona markers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

_NUM = r"-?\d[\d,]*(?:\.\d+)?"


def _to_float(s: str) -> float | None:
    try:
        return float(s.replace(",", "").rstrip("."))
    except ValueError:
        return None


def final_number(text: str) -> float | None:
    """The answer's final number: after `####`, else in `\\boxed{}`, else after "answer is",
    else the last number in the text."""
    for pattern in (
        r"####\s*\$?\s*(" + _NUM + ")",
        r"\\boxed\{\s*\$?(" + _NUM + r")\s*\}",
        r"answer\s*(?:is|:)\s*[:=]?\s*\$?\s*\**\s*(" + _NUM + ")",
    ):
        found = re.findall(pattern, text, flags=re.IGNORECASE)
        if found:
            return _to_float(found[-1])
    found = re.findall(_NUM, text)
    return _to_float(found[-1]) if found else None


def numbers_match(answer: str, reference: Any) -> float:
    """1.0 when the answer's final number equals the reference number, else 0.0."""
    ref = _to_float(str(reference).strip())
    got = final_number(answer)
    if ref is None or got is None:
        return 0.0
    return float(abs(got - ref) <= 1e-6 * max(1.0, abs(ref)))


def has_final_answer_line(answer: str) -> float:
    """1.0 when the answer states its result on a GSM8K-style final line `#### <number>`."""
    return float(bool(re.search(r"^\s*####\s*\$?\s*" + _NUM + r"\s*$", answer, re.MULTILINE)))


def normalize(text: str) -> str:
    """Lower case, accents and punctuation removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def references(value: Any) -> list[str]:
    """A reference as a list of acceptable strings (a str, a list, or an array of str)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Sequence | np.ndarray):
        return [str(v) for v in value if str(v).strip()]
    return [str(value)]


def contains_reference(answer: str, reference: Any) -> float:
    """1.0 when any acceptable reference occurs (as whole words, normalised) in the answer."""
    text = f" {normalize(answer)} "
    return float(any(f" {normalize(r)} " in text for r in references(reference) if normalize(r)))


def marker_score(answer: str, markers: Sequence[str], full: int = 3) -> float:
    """Distinct persona markers (whole words) in the answer, as a fraction of `full`."""
    text = f" {normalize(answer)} "
    hits = sum(1 for m in markers if f" {normalize(m)} " in text)
    return min(hits, full) / full
