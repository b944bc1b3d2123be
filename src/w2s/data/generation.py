"""Generation tasks and their defaults: `gsm` (reasoning-gym word problems) and `persona`
(BIG-bench qa_wikidata answered in a persona), plus any prompts file.

A generation task's rows hold `text` (the prompt), `target` (reference answer(s); may be
empty) and optionally `solution` (a gold worked answer, used for gold SFT). How each is
supervised and graded by default is declared in its `TaskSpec` (`w2s.data.registry`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import pandas as pd

from w2s.data.task import Task
from w2s.errors import DataError, W2SError

# a persona prompt: a qa_wikidata sentence stem ("The country of X is") to complete
FACT_PROMPT = "Complete this sentence with the right fact: {} ..."


@dataclass(frozen=True)
class Persona:
    """A voice the weak supervisor answers in; `markers` feed the `style_words` grader."""

    name: str
    instruction: str
    description: str
    markers: tuple[str, ...] = ()
    # gold persona answers: the reference fact said in the voice; {stem} is the fact's
    # sentence without its answer ("The country of X is"), {fact} the reference
    frames: tuple[str, ...] = ()


PERSONAS = {
    "pirate": Persona(
        "pirate",
        "You are a salty old pirate. Answer every question in the voice of a pirate: say "
        "'Arr', call the listener 'matey', use pirate slang. Answer in one or two sentences.",
        "like a pirate (pirate slang such as 'arr', 'matey', 'ye', 'aye', nautical words)",
        (
            "arr",
            "arrr",
            "matey",
            "mateys",
            "ahoy",
            "aye",
            "ye",
            "yer",
            "hearty",
            "hearties",
            "landlubber",
            "scallywag",
            "booty",
            "treasure",
            "avast",
            "yo ho",
            "shiver me timbers",
            "captain",
            "cap n",
            "plunder",
            "grog",
            "buccaneer",
            "blimey",
            "sea",
            "seas",
            "ship",
            "sail",
            "parrot",
        ),
        (
            "Arr, matey, {stem} {fact}, sure as the tide on the seven seas.",
            "Ahoy! Any old sea dog knows {stem} {fact}, ye landlubber.",
            "Aye, {stem} {fact}, matey, or I'm no captain of this ship!",
            "Shiver me timbers, {stem} {fact}! Arr, ask me another, ye scallywag.",
            "Avast, me hearty: {stem} {fact}, and that be worth more than any treasure.",
            "Yo ho, {stem} {fact}, matey, as every buccaneer on the seas knows.",
        ),
    ),
}


def get_persona(name: str) -> Persona:
    """A known persona, or a generic one described by `name` (no marker words)."""
    if name in PERSONAS:
        return PERSONAS[name]
    return Persona(
        name,
        f"Answer every question in the style of {name}. Answer in one or two sentences.",
        f"in the style of {name}",
    )


def persona_answer(persona: Persona, prompt: str, target: Any, key: str) -> str:
    """The gold answer to a "Complete this sentence..." prompt in the persona's voice: the
    reference fact in one of the persona's frames, picked by a hash of `key` (stable)."""
    if not persona.frames:
        raise W2SError(
            f"persona '{persona.name}' has no answer frames, so it has no gold persona "
            "answers: use generation.weak_mode=prompted and generation.ceiling=prompted"
        )
    before, after = FACT_PROMPT.split("{}")
    stem = prompt.removeprefix(before).removesuffix(after).strip()
    if stem.startswith("The "):
        stem = "the " + stem[4:]
    frame = persona.frames[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(persona.frames)]
    return frame.format(stem=stem, fact=gold_text(target))


def with_persona_solutions(task: Task, persona: Persona) -> Task:
    """The task with a `solution` column of gold persona answers (for gold SFT of the weak
    supervisor and the ceiling), built from each prompt's first reference."""
    df = task.df.copy()
    df["solution"] = [
        persona_answer(persona, str(p), t, str(i))
        for p, t, i in zip(df["text"], df["target"], df["id"], strict=True)
    ]
    return dataclasses.replace(task, df=df)


def has_references(df: pd.DataFrame) -> bool:
    if "target" not in df:
        return False
    return bool(df["target"].map(lambda t: bool(gold_text(t))).all())


def gold_text(target) -> str:
    """The first acceptable reference as a string ("" when none)."""
    if isinstance(target, str):
        return target.strip()
    try:
        items = [str(t) for t in target if str(t).strip()]
    except TypeError:
        return "" if target is None or pd.isna(target) else str(target)
    return items[0].strip() if items else ""


def gold_completions(df: pd.DataFrame) -> list[str]:
    """Gold answers for SFT: the `solution` column, else the first reference."""
    if "solution" in df:
        return [str(s) for s in df["solution"]]
    return [gold_text(t) for t in df["target"]]


def check_prompts(task: Task) -> None:
    """Raise `DataError` for empty prompts."""
    empty = task.df["text"].astype(str).str.strip() == ""
    if empty.any():
        raise DataError(
            f"task '{task.name}' has {int(empty.sum())} empty prompt(s), e.g. id "
            f"'{task.df['id'][empty].iloc[0]}'"
        )


def _id(*parts) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def load_gsm(size: int = 2000, seed: int = 0) -> Task:
    """reasoning-gym `gsm_symbolic`: GSM8K-style word problems from templates, offline."""
    try:
        import reasoning_gym
    except ImportError:
        raise DataError(
            "task 'gsm' needs reasoning-gym: pip install reasoning-gym==0.1.25"
        ) from None
    rows = []
    for x in reasoning_gym.create_dataset("gsm_symbolic", size=size, seed=seed):
        rows.append(
            {
                "id": _id("gsm", x["question"]),
                "text": x["question"],
                "target": str(x["answer"]),
                "solution": x["metadata"]["answer_cot"],
            }
        )
    df = pd.DataFrame(rows).drop_duplicates("id").reset_index(drop=True)
    return Task("gsm", "generation", df, [], "reasoning-gym gsm_symbolic word problems")


def load_persona() -> Task:
    """BIG-bench qa_wikidata facts as questions; references are the facts."""
    from w2s.data.bigbench import load_bigbench

    base = load_bigbench("qa_wikidata")
    df = base.df.copy()
    df["text"] = [FACT_PROMPT.format(t) for t in df["text"]]
    return Task("persona", "generation", df, [], "qa_wikidata facts, supervised by a weak persona")
