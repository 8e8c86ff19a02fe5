"""FAIR's committee: feedback and a rationale from every teacher, peer scores 1-5 from the others, the acceptance rule.

The rule is FAIR's own (collect_teacher_res.py in the seed): scores outside 1-5, or replies without
a readable score, are dropped; a rationale is accepted when the mean of the remaining scores is
strictly above 3, and rejected when none remain. Parsing differs on purpose in one place: FAIR falls
back to the last number anywhere in a reply without brackets; Errata reads bracketed scores only,
since "step 3 is wrong" is not a rating.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.prompts import gold_with_option, render_question
from pipeline.teaching.parsing import TeacherText, parse_teacher_text, reply_text
from pipeline.teaching.templates import PromptTemplate, render, student_values, template_for

LOWEST_SCORE, HIGHEST_SCORE = 1, 5
ACCEPT_ABOVE = 3

# A bracket holding no other bracket and no line break; 40 characters bound the work per bracket.
_BRACKET = re.compile(r"\[([^\[\]\n]{0,40})\]")
# What a rating in brackets looks like: "4", "4/5", "4 out of 5", "Score: 4", "3.5", "six".
_SCORE_LIKE = re.compile(
    r"\s*(?:(?:score|rating)\s*[:=]?\s*)?"
    r"(?P<value>\d+(?:\.\d+)?|zero|one|two|three|four|five|six|seven|eight|nine|ten)"
    r"\s*(?:(?:/|out\s+of)\s*(?P<scale>\d+))?\s*\.?\s*",
    re.IGNORECASE,
)


def fair_feedback_messages(
    problem: ProblemRecord,
    wrong: AttemptRecord,
    template: PromptTemplate | None = None,
    *,
    hint_answer: str | None = None,
) -> list[dict]:
    """Ask a teacher for feedback on ``wrong``, hinting the correct answer (the gold one unless ``hint_answer``)."""
    chosen = template_for(template, "fair_feedback", ("fair_feedback",))
    hint = gold_with_option(problem) if hint_answer is None else hint_answer.strip()
    return render(chosen, **student_values(problem, wrong), gold_answer=hint)


def fair_rationale_messages(problem: ProblemRecord, template: PromptTemplate | None = None) -> list[dict]:
    """Ask a teacher for its own step-by-step rationale of ``problem``."""
    chosen = template_for(template, "fair_rationale", ("fair_rationale",))
    return render(chosen, question=render_question(problem))


def fair_peer_review_messages(
    problem: ProblemRecord, rationale_text: str, template: PromptTemplate | None = None
) -> list[dict]:
    """Ask another teacher to rate ``rationale_text`` 1-5 (the gold answer is its reference, as in FAIR)."""
    chosen = template_for(template, "fair_peer_review", ("fair_peer_review",))
    return render(chosen, question=render_question(problem), rationale=rationale_text.strip(),
                  gold_answer=gold_with_option(problem))


def parse_fair_feedback(text: object) -> TeacherText:
    """FAIR feedback is free text: any non-empty reply."""
    return parse_teacher_text(text)


def parse_fair_rationale(text: object) -> TeacherText:
    """A FAIR rationale is free text: any non-empty reply (its quality is what peer review judges)."""
    return parse_teacher_text(text)


def parse_peer_score(text: object) -> int | None:
    """The reviewer's score: the last bracketed rating in the reply, when it is a whole number from 1 to 5.

    "[4]", "[ 3 ]", "[4/5]", "[4 out of 5]", "[Score: 4]" and "[[4]]" read as scores; brackets that do
    not look like a rating ("[Step 2]", "[see above]") are passed over. The last rating decides, so
    "[4] ... [2]" is 2, and when it is not usable ("[six]", "[3.5]", "[8/10]", "[0]", "[7]") the
    result is None rather than an earlier rating.
    """
    rating = None
    for bracket in _BRACKET.finditer(reply_text(text)):
        found = _SCORE_LIKE.fullmatch(bracket.group(1))
        rating = found if found is not None else rating
    if rating is None:
        return None
    value, scale = rating.group("value"), rating.group("scale")
    if not value.isdigit() or scale not in (None, str(HIGHEST_SCORE)):
        return None
    number = int(value)
    return number if valid_score(number) else None


def valid_score(score: object) -> bool:
    """A whole number from 1 to 5 (a bool is not a score)."""
    return isinstance(score, int) and not isinstance(score, bool) and LOWEST_SCORE <= score <= HIGHEST_SCORE


def mean_peer_score(scores: Sequence[int | None]) -> float | None:
    """The mean of the valid scores; None when there is none."""
    valid = [score for score in scores if valid_score(score)]
    return sum(valid) / len(valid) if valid else None


def fair_accepts(scores: Sequence[int | None]) -> bool:
    """FAIR's rule: accepted when the mean of the valid scores is strictly above 3; no valid score rejects."""
    valid = [score for score in scores if valid_score(score)]
    return bool(valid) and sum(valid) > ACCEPT_ABOVE * len(valid)  # whole numbers: no float rounding


def peer_review_plan(teachers: Sequence[str]) -> list[tuple[str, str]]:
    """(author, reviewer) pairs: each teacher's rationale is scored by every other teacher, in the order given."""
    if len(set(teachers)) != len(teachers):
        raise ValueError(f"each teacher may be listed once, got {list(teachers)}")
    if len(teachers) < 2:
        raise ValueError("FAIR peer review needs at least two teachers (each rationale is scored by the others)")
    return [(author, reviewer) for author in teachers for reviewer in teachers if reviewer != author]
