"""SALAM feedback: ask a teacher why a student's answer is wrong, as ``{reason, guideline}``, never showing gold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.teaching.parsing import find_json_object, reply_text, required_string
from pipeline.teaching.templates import PromptTemplate, render, student_values, template_for

SALAM_KEYS = ("reason", "guideline")


@dataclass(frozen=True)
class SalamFeedback:
    """A parsed SALAM reply; ``extra`` keeps any keys beyond reason and guideline."""

    ok: bool
    error: str
    raw: str
    reason: str = ""
    guideline: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def salam_feedback_messages(
    problem: ProblemRecord, wrong: AttemptRecord, template: PromptTemplate | None = None
) -> list[dict]:
    """The messages asking a teacher for ``{"reason", "guideline"}`` on ``wrong``: question, options, wrong answer.

    The gold answer and rationale are never read here, so no template can leak them.
    """
    chosen = template_for(template, "salam_feedback", ("salam_feedback",))
    return render(chosen, **student_values(problem, wrong))


def parse_salam_feedback(text: object) -> SalamFeedback:
    """The first JSON object in the reply (prose and ```json fences around it are fine), with both keys as text."""
    raw = reply_text(text)
    if not raw.strip():
        return SalamFeedback(False, "empty reply", raw)
    data, error = find_json_object(raw, SALAM_KEYS)
    if data is None:
        return SalamFeedback(False, error, raw)
    reason, reason_error = required_string(data, "reason")
    guideline, guideline_error = required_string(data, "guideline")
    extra = {key: value for key, value in data.items() if key not in SALAM_KEYS}
    error = reason_error or guideline_error
    return SalamFeedback(not error, error, raw, reason, guideline, extra)
