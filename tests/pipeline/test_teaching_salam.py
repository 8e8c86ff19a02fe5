"""SALAM feedback: the prompt never shows the true answer; replies parse to {reason, guideline} or a failure."""

from __future__ import annotations

import pytest

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.prompts import gold_with_option, render_question
from pipeline.teaching import (
    DEFAULT_TEMPLATES, TemplateError, parse_salam_feedback, salam_feedback_messages, template_from_text,
)

CHOICE = ProblemRecord(
    external_id="bbh_date_3", question="Which date is a week after 02/09/2009?", gold_answer="B",
    choices=("02/23/2009", "02/16/2009 exactly", "03/16/2009"), gold_rationale="Seven days after the 9th.",
)
WRONG_CHOICE = AttemptRecord("bbh_date_3", output="(A) Two weeks are 14 days.", extracted="(a)", correct=False)
NUMBER = ProblemRecord(external_id="gsm_1", question="Tom has 3 bags of 4 apples. How many apples?",
                       gold_answer="12", gold_rationale="3 * 4 = 12\nThe answer is 12")
WRONG_NUMBER = AttemptRecord("gsm_1", output="3 + 4 = 7\nThe answer is 7", extracted="7", correct=False)


def text_of(messages: list[dict]) -> str:
    return "\n".join(message["content"] for message in messages)


def test_the_prompt_shows_the_question_with_options_and_the_wrong_answer():
    messages = salam_feedback_messages(CHOICE, WRONG_CHOICE)
    user = messages[-1]["content"]
    assert render_question(CHOICE) in user
    assert "(A) Two weeks are 14 days." in user
    assert '"reason"' in user and '"guideline"' in user


def test_the_prompt_never_contains_the_gold_answer_outside_the_option_list():
    # The options must be shown, and the gold option is one of them; what must never appear is
    # anything that singles it out: its letter in brackets, its text, or "(B) text" together.
    rest = text_of(salam_feedback_messages(CHOICE, WRONG_CHOICE)).replace(render_question(CHOICE), "")
    for leak in ("(B)", "B)", "02/16/2009", gold_with_option(CHOICE), CHOICE.gold_rationale):
        assert leak not in rest


def test_the_prompt_never_contains_a_numeric_gold_or_the_gold_rationale():
    prompt = text_of(salam_feedback_messages(NUMBER, WRONG_NUMBER))
    assert "12" not in prompt and "3 * 4" not in prompt


def test_no_template_can_reach_the_gold_because_the_builder_never_reads_it():
    secret = ProblemRecord(external_id="s", question="Q?", gold_answer="SECRET-GOLD", gold_rationale="SECRET-WHY",
                           metadata={"answer": "SECRET-META"})
    edited = template_from_text("salam_feedback", "", "{question}|{student_solution}|{student_answer}")
    for template in (None, edited):
        assert "SECRET" not in text_of(salam_feedback_messages(secret, WRONG_NUMBER, template))


def test_a_letter_answer_is_shown_with_its_option_text():
    edited = template_from_text("salam_feedback", "", "{question}\nStudent chose: {student_answer}")
    assert "Student chose: (A) 02/23/2009" in salam_feedback_messages(CHOICE, WRONG_CHOICE, edited)[-1]["content"]


def test_a_template_of_another_kind_is_refused():
    with pytest.raises(TemplateError, match="expected a 'salam_feedback' template, got 'fair_rationale'"):
        salam_feedback_messages(CHOICE, WRONG_CHOICE, DEFAULT_TEMPLATES["fair_rationale"])


GOOD = '{"reason": "Counted two weeks.", "guideline": "Add seven days for one week."}'


@pytest.mark.parametrize("reply,reason,guideline", [
    (GOOD, "Counted two weeks.", "Add seven days for one week."),
    (f"Sure! Here is my feedback:\n{GOOD}\nHope this helps.", "Counted two weeks.", "Add seven days for one week."),
    (f"```json\n{GOOD}\n```", "Counted two weeks.", "Add seven days for one week."),
    ('```\n{\n  "reason": "r",\n  "guideline": "g"\n}\n```', "r", "g"),
    # Braces and quotes inside the strings do not end the object early.
    ('{"reason": "The set {1, 2} has \\"two\\" items }", "guideline": "Count {x}"}',
     'The set {1, 2} has "two" items }', "Count {x}"),
    # Two objects: the first one wins.
    ('{"reason": "first", "guideline": "g1"} and also {"reason": "second", "guideline": "g2"}', "first", "g1"),
    # A stray {} or an unrelated object in the prose does not hide the answer that follows it.
    ('Use the form {} please. {"reason": "r", "guideline": "g"}', "r", "g"),
    ('Example: {"note": 1}. {"reason": "r", "guideline": "g"}', "r", "g"),
    # A wrapper object: the inner one holds the keys.
    ('{"feedback": {"reason": "r", "guideline": "g"}}', "r", "g"),
    # A stray quote inside a stray brace would swallow the object; the string-blind pass finds it.
    ('I think {the "student} erred. {"reason": "r", "guideline": "g"}', "r", "g"),
    # A raw line break inside a string: invalid strict JSON, but what teachers write; accepted.
    ('{"reason": "line one\nline two", "guideline": "g"}', "line one\nline two", "g"),
    ('{"reason": "  padded  ", "guideline": "g"}', "padded", "g"),
    ('{"reason": "Jahr 2009 ist kein Schaltjahr — 日付", "guideline": "Zähle die Tage 🙂"}',
     "Jahr 2009 ist kein Schaltjahr — 日付", "Zähle die Tage 🙂"),
    ('{"reason": "\\u00e9t\\u00e9", "guideline": "g"}', "été", "g"),
])
def test_well_formed_replies_parse(reply, reason, guideline):
    parsed = parse_salam_feedback(reply)
    assert (parsed.ok, parsed.error, parsed.reason, parsed.guideline) == (True, "", reason, guideline)
    assert parsed.raw == reply


def test_extra_keys_are_kept():
    parsed = parse_salam_feedback('{"reason": "r", "guideline": "g", "confidence": 0.9, "tags": ["dates"]}')
    assert parsed.ok and parsed.extra == {"confidence": 0.9, "tags": ["dates"]}


@pytest.mark.parametrize("reply,error", [
    ("", "empty reply"),
    ("   \n ", "empty reply"),
    (None, "empty reply"),
    ("The student confused weeks and days.", "no JSON object found"),
    ('{"reason": "r", "guideline": "g",}', "not valid JSON: Expecting property name enclosed in double quotes"),
    ("{'reason': 'r', 'guideline': 'g'}", "not valid JSON: Expecting property name enclosed in double quotes"),
    ('{"reason": "r", "guideline": "g"', "no JSON object found"),  # never closed
    ('{"reason": "r"}', "missing key 'guideline'"),
    ('{"guideline": "g"}', "missing key 'reason'"),
    ('{"reason": "", "guideline": "g"}', "'reason' is empty"),
    ('{"reason": "r", "guideline": "   "}', "'guideline' is empty"),
    ('{"reason": 5, "guideline": "g"}', "'reason' must be a string, got a number"),
    ('{"reason": "r", "guideline": ["a", "b"]}', "'guideline' must be a string, got a list"),
    ('{"reason": null, "guideline": "g"}', "'reason' must be a string, got null"),
    ('{"reason": {"why": "x"}, "guideline": "g"}', "'reason' must be a string, got an object"),
    ('{"reason": true, "guideline": "g"}', "'reason' must be a string, got a boolean"),
    ("[1, 2, 3]", "no JSON object found"),
    ("{}", "missing key 'reason'"),
])
def test_malformed_replies_are_recorded_as_failures(reply, error):
    parsed = parse_salam_feedback(reply)
    assert not parsed.ok
    assert parsed.error.startswith(error)
    assert parsed.raw == (reply or "")


def test_a_failure_keeps_what_did_parse():
    parsed = parse_salam_feedback('{"reason": "r", "guideline": 3}')
    assert (parsed.ok, parsed.reason, parsed.guideline) == (False, "r", "")
