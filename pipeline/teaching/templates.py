"""Teacher prompt templates: plain ``str.format`` texts that researchers can edit, their checks, and rendering.

A template's ``name`` is its kind ("salam_feedback", "fair_peer_review", ...): the kind fixes the
method and which ``{placeholders}`` the text may use. The web app stores edited versions under the
same name; `validate_template` is what it runs before saving one. Literal braces are written
``{{`` and ``}}``, as in any ``str.format`` text. `student_values` gives the values every
mistake-based template is filled with.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter, ascii_uppercase

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.prompts import render_question

METHODS = ("salam", "lema", "fair", "gsi", "lbt")


class TemplateError(ValueError):
    """A template that cannot be saved or rendered; the message names the template and the placeholder."""


@dataclass(frozen=True)
class PromptTemplate:
    """A teacher prompt: a system text (may be empty) and a user text, with the placeholders they use.

    ``placeholders`` is informative (what a form shows the researcher); validation and rendering
    read the placeholders from the texts themselves.
    """

    name: str
    method: str
    system: str
    user: str
    placeholders: tuple[str, ...]


@dataclass(frozen=True)
class TemplateKind:
    """What a kind of template may use: ``allowed`` placeholders, and ``required`` groups (one of each group)."""

    method: str
    allowed: frozenset[str]
    required: tuple[tuple[str, ...], ...]
    description: str


def _kind(method: str, allowed: str, required: tuple[tuple[str, ...], ...], description: str) -> TemplateKind:
    return TemplateKind(method, frozenset(allowed.split()), required, description)


_STUDENT = ("student_solution", "student_answer")
TEMPLATE_KINDS: dict[str, TemplateKind] = {
    "salam_feedback": _kind("salam", "question student_solution student_answer", (("question",), _STUDENT),
                            "why the student's answer is wrong and a guideline, as JSON; never the true answer"),
    "lema_correction": _kind("lema", "question student_solution student_steps student_answer",
                             (("question",), ("student_solution", "student_steps")),
                             "incorrect step, explanation, corrected solution ending 'The answer is X'"),
    "lema_correction_hinted": _kind("lema", "question student_solution student_steps student_answer gold_answer",
                                    (("question",), ("student_solution", "student_steps"), ("gold_answer",)),
                                    "as lema_correction, with the gold answer given to the teacher as a hint"),
    "fair_feedback": _kind("fair", "question student_solution student_answer gold_answer", (("question",), _STUDENT),
                           "feedback on the student's wrong answer, given a hint of the correct answer"),
    "fair_rationale": _kind("fair", "question", (("question",),), "the teacher's own step-by-step rationale"),
    "fair_peer_review": _kind("fair", "question rationale gold_answer", (("question",), ("rationale",)),
                              "score another teacher's rationale 1-5, the score in brackets at the end"),
    "lbt_rationale": _kind("lbt", "question", (("question",),),
                           "a teaching rationale ending with the [[Final Answer]]: block"),
}

# Why a placeholder is refused, where "not in the list" would not say enough.
_FORBIDDEN = {
    ("salam", "gold_answer"): "the SALAM feedback prompt must not reveal the true answer",
}


def template_fields(text: str) -> tuple[str, ...]:
    """The placeholder names a template text uses, in order of first use; TemplateError for broken syntax."""
    names: list[str] = []
    try:
        parsed = list(Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{exc}; write {{{{ and }}}} for a literal brace") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        _check_field(name, spec, conversion)
        if name not in names:
            names.append(name)
    return tuple(names)


def _check_field(name: str, spec: str | None, conversion: str | None) -> None:
    if not name:
        raise TemplateError("an empty placeholder {} needs a name, e.g. {question}; "
                            "write {{ and }} for a literal brace")
    if not name.isidentifier():
        raise TemplateError(f"placeholder {{{name}}} must be a plain name (no dots, indexes or spaces); "
                            "write {{ and }} for a literal brace")
    if spec or conversion:
        raise TemplateError(f"placeholder {{{name}}} may not have a format spec or conversion")


def template_from_text(name: str, system: str, user: str) -> PromptTemplate:
    """A template of kind ``name`` from edited texts, its method and placeholders filled in, validated."""
    kind = _kind_of(name)
    template = PromptTemplate(name, kind.method, system, user, _used(system, user))
    validate_template(template)
    return template


def _used(system: str, user: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(template_fields(system) + template_fields(user)))


def used_placeholders(template: PromptTemplate) -> tuple[str, ...]:
    """The placeholders a template's texts actually use (system first), whatever it declares."""
    return _used(template.system, template.user)


def _kind_of(name: str) -> TemplateKind:
    kind = TEMPLATE_KINDS.get(name)
    if kind is None:
        raise TemplateError(f"unknown template {name!r}; known templates: {', '.join(TEMPLATE_KINDS)}")
    return kind


def validate_template(template: PromptTemplate) -> None:
    """Raise TemplateError naming the first problem: kind, method, syntax, an unknown or missing placeholder."""
    kind = _kind_of(template.name)
    if template.method != kind.method:
        raise TemplateError(f"template {template.name!r} belongs to method {kind.method!r}, not {template.method!r}")
    if not isinstance(template.system, str) or not isinstance(template.user, str):
        raise TemplateError(f"template {template.name!r}: system and user must be text")
    if not template.user.strip():
        raise TemplateError(f"template {template.name!r}: the user text is empty")
    used = _used(template.system, template.user)
    for name in used:
        _check_known(template, kind, name)
    for group in kind.required:
        if not set(group) & set(used):
            wanted = " or ".join(f"{{{name}}}" for name in group)
            raise TemplateError(f"template {template.name!r} must use {wanted}")
    _check_declared(template, kind)


def _check_known(template: PromptTemplate, kind: TemplateKind, name: str) -> None:
    reason = _FORBIDDEN.get((kind.method, name))
    if reason:
        raise TemplateError(f"placeholder {{{name}}} is not allowed in template {template.name!r}: {reason}")
    if name not in kind.allowed:
        known = ", ".join(f"{{{known}}}" for known in sorted(kind.allowed))
        raise TemplateError(f"unknown placeholder {{{name}}} in template {template.name!r} "
                            f"(method {kind.method}); known: {known}")


def _check_declared(template: PromptTemplate, kind: TemplateKind) -> None:
    # The declared list may differ from what the text uses (a store may keep the default's list for
    # an edited text); what it may not do is name a placeholder the kind does not know.
    for name in template.placeholders:
        if name not in kind.allowed:
            raise TemplateError(f"template {template.name!r} lists unknown placeholder {{{name}}}")


def render(template: PromptTemplate, **values: str) -> list[dict]:
    """Chat messages from a template: a system message (when its text is not empty), then the user message.

    Values may include any placeholder the template's kind allows, used or not (an edited template
    may leave one out); a value the kind does not know, or one the text needs but was not given,
    is a TemplateError naming it.
    """
    validate_template(template)
    kind = TEMPLATE_KINDS[template.name]
    for name, value in values.items():
        if name not in kind.allowed:
            raise TemplateError(f"unknown value {name!r} for template {template.name!r}; "
                                f"known: {', '.join(sorted(kind.allowed))}")
        if not isinstance(value, str):
            raise TemplateError(f"value {name!r} for template {template.name!r} must be text, "
                                f"got {type(value).__name__}")
    missing = [name for name in used_placeholders(template) if name not in values]
    if missing:
        raise TemplateError(f"missing value for placeholder {{{missing[0]}}} in template {template.name!r}")
    system = template.system.format(**values)
    messages = [{"role": "system", "content": system}] if system.strip() else []
    return messages + [{"role": "user", "content": template.user.format(**values)}]


# --- values ---------------------------------------------------------------------------------------


def student_values(problem: ProblemRecord, wrong: AttemptRecord) -> dict[str, str]:
    """The question and the student's reply as template values; nothing here is derived from the gold answer."""
    return {
        "question": render_question(problem),
        "student_solution": wrong.output.strip() or "(no answer)",
        "student_answer": student_answer(problem, wrong),
    }


def student_answer(problem: ProblemRecord, wrong: AttemptRecord) -> str:
    """The student's extracted answer, with the option text when it is an option letter ("(B) two")."""
    extracted = (wrong.extracted or "").strip()
    if not extracted:
        return "(no final answer found)"
    letter = extracted.strip("() ").upper()
    if problem.choices and len(letter) == 1 and letter in ascii_uppercase[:len(problem.choices)]:
        return f"({letter}) {problem.choices[ascii_uppercase.index(letter)]}"
    return extracted


# --- the default texts (Errata's own wording) ------------------------------------------------------

_SALAM_SYSTEM = ("You are a study assistant. You help a student learn from a wrong answer by explaining the "
                 "mistake and giving advice that carries over to similar questions. You never say which "
                 "answer is right.")
_SALAM_USER = """A student got the following question wrong.

Question:
{question}

The student's answer:
{student_solution}

Explain why this answer is wrong, and write one general guideline the student can follow on questions \
like this one. Do not state, hint at or rule in any particular option or value as the right answer.

Reply with one JSON object and nothing else, with two string fields:
{{"reason": "<what is wrong with the student's answer>", "guideline": "<advice for similar questions>"}}"""

_LEMA_SYSTEM = "You are a careful maths teacher who marks students' worked solutions step by step."
_LEMA_USER = """Here is a problem and a student's step-by-step solution. The solution ends in a wrong answer.

Problem:
{question}

Student's solution:
{student_steps}
{hint}
Find the first step that goes wrong, explain what is wrong with it, then write a corrected solution \
from that step on. Use exactly this layout:

Incorrect Step: <the first wrong step, e.g. Step 2>
Explanation: <why that step is wrong>
Correct Solution:
<the corrected steps, one per line>
The answer is <the final answer alone>"""
_LEMA_HINT = """
(For you only: the correct final answer is {gold_answer}. Your corrected solution must reach it by \
sound reasoning; do not just assert it.)
"""

_FAIR_FEEDBACK_SYSTEM = "You are a teacher giving written feedback on a student's work."
_FAIR_FEEDBACK_USER = """Question:
{question}

The student's answer, which is wrong:
{student_solution}

For your reference, the correct answer is: {gold_answer}

Write feedback for the student: say where their reasoning went wrong, why, and how to reason \
correctly instead. Speak to the student directly and be specific about the mistake."""

_FAIR_RATIONALE_SYSTEM = "You are a teacher writing model solutions for students."
_FAIR_RATIONALE_USER = """Question:
{question}

Solve this question step by step, explaining each step so a student could follow it. \
Finish with a last line of the form "Answer: <final answer>"."""

_FAIR_REVIEW_SYSTEM = "You are a teacher reviewing a solution that a colleague wrote for students."
_FAIR_REVIEW_USER = """Question:
{question}

Reference answer: {gold_answer}

Your colleague's solution:
---
{rationale}
---

How correct and how clear is this solution? Rate it from 1 (wrong or unhelpful) to 5 (correct and \
clearly explained), with a short justification. End your reply with the rating alone in square \
brackets, for example [3]."""

_LBT_SYSTEM = "You are a teacher writing worked solutions that students will learn from."
_LBT_USER = """Problem:
{question}

Write a complete worked solution that explains the method, so that a student could solve similar \
problems after reading it. End with the marker line and the final result alone on the line below it, \
exactly like this:
[[Final Answer]]:
<final result>"""


def _default(name: str, system: str, user: str) -> PromptTemplate:
    return template_from_text(name, system, user)


DEFAULT_TEMPLATES: dict[str, PromptTemplate] = {
    template.name: template for template in (
        _default("salam_feedback", _SALAM_SYSTEM, _SALAM_USER),
        _default("lema_correction", _LEMA_SYSTEM, _LEMA_USER.replace("{hint}", "")),
        _default("lema_correction_hinted", _LEMA_SYSTEM, _LEMA_USER.replace("{hint}", _LEMA_HINT)),
        _default("fair_feedback", _FAIR_FEEDBACK_SYSTEM, _FAIR_FEEDBACK_USER),
        _default("fair_rationale", _FAIR_RATIONALE_SYSTEM, _FAIR_RATIONALE_USER),
        _default("fair_peer_review", _FAIR_REVIEW_SYSTEM, _FAIR_REVIEW_USER),
        _default("lbt_rationale", _LBT_SYSTEM, _LBT_USER),
    )
}


def template_for(template: PromptTemplate | None, default: str, accepted: tuple[str, ...]) -> PromptTemplate:
    """``template``, or the default of that name; TemplateError when a given template is of another kind."""
    if template is None:
        return DEFAULT_TEMPLATES[default]
    if template.name not in accepted:
        raise TemplateError(f"expected a {' or '.join(repr(name) for name in accepted)} template, "
                            f"got {template.name!r}")
    return template
