"""Resolve a task spec string to a `Task`: aliases, `bigbench:`, `file:`, `hf:`.

Spec grammar: `<source>:<name>[?key=value&...]`, e.g.
`bigbench:multiemo/hotels_text_en?classes=negative,positive`,
`file:data.csv?text=review&label=stars`, `hf:./my_dataset?split=train`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from w2s.data.bigbench import load_bigbench, load_bigbench_union
from w2s.data.files import load_file, load_hf
from w2s.data.task import Task
from w2s.errors import DataError, UnknownNameError

_MULTIEMO_EN = [f"multiemo/{d}_sentence_en" for d in ("hotels", "medicine", "products", "reviews")]


@dataclass(frozen=True)
class Alias:
    """A short name for a good default task."""

    name: str
    description: str
    load: Callable[[], Task]


ALIASES: dict[str, Alias] = {
    a.name: a
    for a in [
        Alias(
            "sentiment",
            "English MultiEmo sentences, negative vs positive; 4 domains kept",
            lambda: load_bigbench_union(_MULTIEMO_EN, ["negative", "positive"], "sentiment"),
        ),
        Alias(
            "sentiment4",
            "English MultiEmo sentences, 4 classes (ambivalent/negative/neutral/positive)",
            lambda: load_bigbench_union(_MULTIEMO_EN, None, "sentiment4"),
        ),
        Alias(
            "fever",
            "FEVER claims, true vs false (BIG-bench fact_checker/fever)",
            lambda: load_bigbench("fact_checker/fever"),
        ),
        Alias(
            "vitaminc",
            "VitaminC fact verification, 3 classes",
            lambda: load_bigbench("vitaminc_fact_verification"),
        ),
        Alias(
            "fallacies",
            "formal fallacies (syllogisms with negation), valid vs invalid",
            lambda: load_bigbench("formal_fallacies_syllogisms_negation"),
        ),
        Alias(
            "movie-dialog",
            "same or different speaker in movie dialogue",
            lambda: load_bigbench("movie_dialog_same_or_different"),
        ),
        Alias(
            "epistemic",
            "epistemic reasoning, entailment vs non-entailment",
            lambda: load_bigbench("epistemic_reasoning"),
        ),
        Alias(
            "math-qa",
            "elementary maths word problems, answer correct or not (binarised 5-way MC)",
            lambda: load_bigbench("elementary_math_qa/question_only"),
        ),
        Alias(
            "gsm",
            "generation: GSM8K-style word problems (reasoning-gym gsm_symbolic), final number",
            lambda: _generation("load_gsm"),
        ),
        Alias(
            "persona",
            "generation: qa_wikidata facts, weak supervisor answers as a persona (pirate)",
            lambda: _generation("load_persona"),
        ),
    ]
}


def _generation(loader: str) -> Task:
    from w2s.data import generation

    return getattr(generation, loader)()


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split `source:name?k=v` into (source, name, options)."""
    body, _, query = spec.partition("?")
    source, sep, name = body.partition(":")
    if not sep:
        source, name = "alias", body
    return source, name, dict(parse_qsl(query, keep_blank_values=True))


_OPTIONS = {
    "alias": ("classes",),
    "bigbench": ("classes",),
    "file": ("text", "label", "kind", "classes"),
    "hf": ("split", "text", "label", "classes"),
}


def load_task(spec: str) -> Task:
    """Load a task by spec; unknown names raise `UnknownNameError` listing what exists.

    Bad specs and bad data raise a one-line `W2SError`: unknown options, `classes=` naming
    a class twice or an unknown class, missing or unreadable files (see `load_file`)."""
    source, name, opts = parse_spec(spec.strip())
    if source not in _OPTIONS:
        raise UnknownNameError(f"unknown task source '{source}:' (use bigbench:, file:, hf:)")
    unknown = sorted(set(opts) - set(_OPTIONS[source]))
    if unknown:
        raise UnknownNameError(
            f"unknown option '{unknown[0]}' in task spec '{spec}' "
            f"(options for {source}: {', '.join(_OPTIONS[source])})"
        )
    classes = [c for c in opts.pop("classes", "").split(",") if c] or None
    if classes and len(set(classes)) < len(classes):
        twice = next(c for c in classes if classes.count(c) > 1)
        raise DataError(f"task spec '{spec}': classes= names '{twice}' twice")
    if source == "alias":
        if name not in ALIASES:
            raise UnknownNameError(
                f"unknown task '{spec}': use an alias ({', '.join(ALIASES)}) or a source prefix "
                "(bigbench:<task>, file:<path>, hf:<id or folder>); see `w2s list tasks`"
            )
        task = ALIASES[name].load()
    elif source == "bigbench":
        return load_bigbench(name, classes)
    elif source == "file":
        task = load_file(
            name, opts.get("text", "text"), opts.get("label", "label"), opts.get("kind")
        )
    else:
        task = load_hf(
            name, opts.get("split", "train"), opts.get("text", "text"), opts.get("label", "label")
        )
    return _subset(task, classes) if classes else task


def _subset(task: Task, classes: list[str]) -> Task:
    if task.kind != "classification":
        raise DataError(f"{task.name}: classes= needs a classification task, not {task.kind}")
    unknown = [c for c in classes if c not in task.classes]
    if unknown:
        raise DataError(
            f"{task.name}: unknown class '{unknown[0]}' (classes: {', '.join(task.classes)})"
        )
    keep = {task.classes.index(c): i for i, c in enumerate(classes)}
    df = task.df[task.df["label"].isin(keep)].copy()
    df["label"] = df["label"].map(keep)
    return Task(task.name, task.kind, df.reset_index(drop=True), classes, task.description)
