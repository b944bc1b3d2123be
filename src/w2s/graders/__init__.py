"""Graders of generated answers, by name: deterministic checks and LLM judges.

Each grader maps (prompts, answers, references) to one score per answer under its
metric name (`correct`, `content`, `style`, ...); NaN marks an answer it could not score.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from w2s.errors import W2SError
from w2s.graders.deterministic import (
    contains_reference,
    has_final_answer_line,
    marker_score,
    numbers_match,
    references,
)
from w2s.graders.judge import CONTENT_RUBRIC, QUALITY_RUBRIC, STYLE_RUBRIC, LLMJudge, parse_score
from w2s.registry import Registry


class Grader(ABC):
    """Scores answers; `metric` names the score in metrics.json."""

    name: ClassVar[str]
    metric: ClassVar[str]
    description: ClassVar[str] = ""
    needs_reference: ClassVar[bool] = False
    needs_judge: ClassVar[bool] = False
    # the deterministic metric a judge's score is checked against, when both are graded
    checked_against: ClassVar[str | None] = None

    def __init__(self, judge: LLMJudge | None = None, persona: Any = None) -> None:
        self.judge = judge
        self.persona = persona

    @abstractmethod
    def score(
        self, prompts: Sequence[str], answers: Sequence[str], refs: Sequence[Any]
    ) -> np.ndarray:
        """One score per answer."""


GRADERS: Registry[type[Grader]] = Registry("grader")


@GRADERS.register
class NumericMatch(Grader):
    name, metric = "numeric", "correct"
    description = "1 if the answer's final number equals the reference number"
    needs_reference = True

    def score(self, prompts, answers, refs):
        return np.array([numbers_match(a, r) for a, r in zip(answers, refs, strict=True)])


@GRADERS.register
class AnswerFormat(Grader):
    name, metric = "answer_format", "format"
    description = "1 if the answer ends on a GSM8K-style '#### <number>' line (the intended format)"

    def score(self, prompts, answers, refs):
        return np.array([has_final_answer_line(a) for a in answers])


@GRADERS.register
class ContainsReference(Grader):
    name, metric = "contains", "correct"
    description = "1 if any reference answer occurs in the answer (normalised, whole words)"
    needs_reference = True

    def score(self, prompts, answers, refs):
        return np.array([contains_reference(a, r) for a, r in zip(answers, refs, strict=True)])


@GRADERS.register
class StyleWords(Grader):
    name, metric = "style_words", "style_words"
    description = "distinct persona marker words in the answer (0, 1/3, 2/3, 1)"

    def score(self, prompts, answers, refs):
        markers = getattr(self.persona, "markers", ())
        if not markers:
            raise W2SError(
                f"grader 'style_words' has no marker words for persona "
                f"'{getattr(self.persona, 'name', None)}'; use judge_style"
            )
        return np.array([marker_score(a, markers) for a in answers])


class JudgeGrader(Grader):
    """An LLM judge scoring rubric prompts: sampled scores (`rate`), or with
    `expected = True` the G-Eval mean over the judge's score probabilities."""

    needs_judge = True
    expected: ClassVar[bool] = False

    @abstractmethod
    def rubric_prompts(
        self, prompts: Sequence[str], answers: Sequence[str], refs: Sequence[Any]
    ) -> list[str]:
        """The filled-in rubric, one per answer."""

    def score(self, prompts, answers, refs):
        rubric = self.rubric_prompts(prompts, answers, refs)
        return self.judge.expected(rubric) if self.expected else self.judge.rate(rubric)


@GRADERS.register
class JudgeContent(JudgeGrader):
    name, metric = "judge_content", "content"
    description = "LLM judge: content correct vs the reference, 1-10"
    needs_reference = True
    checked_against = "correct"

    def rubric_prompts(self, prompts, answers, refs):
        return [
            CONTENT_RUBRIC.format(question=q, reference=" / ".join(references(r)), answer=a)
            for q, a, r in zip(prompts, answers, refs, strict=True)
        ]


@GRADERS.register
class JudgeStyle(JudgeGrader):
    name, metric = "judge_style", "style"
    description = "LLM judge: how strongly the answer speaks in the persona, 1-10"
    checked_against = "style_words"

    def rubric_prompts(self, prompts, answers, refs):
        desc = getattr(self.persona, "description", "in the intended style")
        return [STYLE_RUBRIC.format(answer=a, persona=desc) for a in answers]


@GRADERS.register
class JudgeQuality(JudgeGrader):
    name, metric = "judge_quality", "quality"
    description = "LLM judge: correct, helpful and clear, 1-10 (no reference needed)"

    def rubric_prompts(self, prompts, answers, refs):
        return [
            QUALITY_RUBRIC.format(question=q, answer=a)
            for q, a in zip(prompts, answers, strict=True)
        ]


@GRADERS.register
class JudgeContentExpected(JudgeContent):
    name, metric, expected = "judge_content_geval", "content_geval", True
    description = "G-Eval: the judge's expected content score from its score log-probs"


@GRADERS.register
class JudgeStyleExpected(JudgeStyle):
    name, metric, expected = "judge_style_geval", "style_geval", True
    description = "G-Eval: the judge's expected style score from its score log-probs"


@GRADERS.register
class JudgeQualityExpected(JudgeQuality):
    name, metric, expected = "judge_quality_geval", "quality_geval", True
    description = "G-Eval: the judge's expected quality score from its score log-probs"


def get_grader(name: str, judge: LLMJudge | None = None, persona: Any = None) -> Grader:
    """A grader by name; unknown names and judge graders without a judge are clear errors."""
    cls = GRADERS.get(name)
    if cls.needs_judge and judge is None:
        raise W2SError(f"grader '{name}' needs a judge model: set generation.judge.model")
    return cls(judge=judge, persona=persona)


__all__ = ["GRADERS", "Grader", "LLMJudge", "get_grader", "parse_score"]
