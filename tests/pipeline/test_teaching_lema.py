"""LEMA corrections: the prompt (plain or hinted), the three sections and final answer, and the auto-check."""

from __future__ import annotations

import pytest

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.teaching import (
    DEFAULT_TEMPLATES, LemaCorrection, TemplateError, lema_auto_check, lema_correction_messages,
    parse_lema_correction, template_from_text,
)
from pipeline.teaching.lema import numbered_steps

PROBLEM = ProblemRecord(external_id="gsm_7", question="A shirt costs $30 and pants cost $46. She had $100. "
                        "How much is left?", gold_answer="24")
WRONG = AttemptRecord("gsm_7", output="30 + 46 = 66\n100 - 66 = 34\nThe answer is 34", extracted="34", correct=False)

GOOD = """Incorrect Step: Step 1.
Explanation: 30 + 46 is 76, not 66.
Correct Solution:
Step 1: 30 + 46 = 76.
Step 2: 100 - 76 = 24.
Step 3: The answer is 24."""


def test_the_prompt_numbers_the_students_steps_and_asks_for_the_layout():
    user = lema_correction_messages(PROBLEM, WRONG)[-1]["content"]
    assert PROBLEM.question in user
    assert "Step 1: 30 + 46 = 66\nStep 2: 100 - 66 = 34\nStep 3: The answer is 34" in user
    for heading in ("Incorrect Step:", "Explanation:", "Correct Solution:", "The answer is"):
        assert heading in user


def test_the_plain_prompt_does_not_give_the_gold_answer():
    # LEMA's released prompt shows only the question and the wrong solution.
    assert "24" not in "\n".join(m["content"] for m in lema_correction_messages(PROBLEM, WRONG))


def test_the_hinted_prompt_gives_the_gold_answer():
    user = lema_correction_messages(PROBLEM, WRONG, hint_answer="24")[-1]["content"]
    assert "the correct final answer is 24" in user


def test_a_hint_with_a_template_that_cannot_show_it_is_refused():
    with pytest.raises(TemplateError, match=r"has no \{gold_answer\}"):
        lema_correction_messages(PROBLEM, WRONG, DEFAULT_TEMPLATES["lema_correction"], hint_answer="24")
    with pytest.raises(TemplateError, match=r"missing value for placeholder \{gold_answer\}"):
        lema_correction_messages(PROBLEM, WRONG, DEFAULT_TEMPLATES["lema_correction_hinted"])


def test_an_edited_template_may_use_the_raw_solution():
    edited = template_from_text("lema_correction", "", "{question}\n---\n{student_solution}\n---")
    assert "---\n30 + 46 = 66\n100 - 66 = 34\nThe answer is 34\n---" in lema_correction_messages(
        PROBLEM, WRONG, edited)[0]["content"]


@pytest.mark.parametrize("solution,numbered", [
    ("a\n\n b \n", "Step 1: a\nStep 2: b"),
    ("Step 1: a\nStep 2: b", "Step 1: a\nStep 2: b"),  # already numbered: left alone
    ("", "(no answer)"),
])
def test_numbered_steps(solution, numbered):
    assert numbered_steps(solution) == numbered


@pytest.mark.parametrize("reply,expected", [
    (GOOD, ("Step 1.", "30 + 46 is 76, not 66.", "Step 1: 30 + 46 = 76.\nStep 2: 100 - 76 = 24.\n"
            "Step 3: The answer is 24.", "24")),
    # Markdown headings and bold, a lower-case "corrected solution" and LEMA's braces around it.
    ("**Incorrect Step:** Step 1\n\n**Explanation:** wrong sum\n\n## Corrected solution:\n{\n76 - ok\n"
     "The answer is 24\n}", ("Step 1", "wrong sum", "76 - ok\nThe answer is 24", "24")),
    # A heading word inside a section stays in the section; only the first of each heading counts.
    ("Incorrect Step: Step 2\nExplanation: the Explanation: of it\nCorrect Solution: redo\nExplanation: again\n"
     "The answer is $1,000.", ("Step 2", "the Explanation: of it", "redo\nExplanation: again\nThe answer is $1,000.",
                              "$1,000")),
    # The last "The answer is" decides; a decimal keeps its point, the closing full stop goes.
    ("Incorrect Step: 3\nExplanation: x\nCorrect Solution:\nThe answer is 2.\nNo wait, the answer is 3.5.",
     ("3", "x", "The answer is 2.\nNo wait, the answer is 3.5.", "3.5")),
    ("Incorrect Step: Schritt 2\nExplanation: 数字が違う\nCorrect Solution:\nThe final answer is: ½",
     ("Schritt 2", "数字が違う", "The final answer is: ½", "½")),
])
def test_well_formed_corrections_parse(reply, expected):
    parsed = parse_lema_correction(reply)
    assert parsed.ok, parsed.error
    assert (parsed.incorrect_step, parsed.explanation, parsed.corrected_solution, parsed.corrected_answer) == expected


@pytest.mark.parametrize("reply,error", [
    ("", "empty reply"),
    (None, "empty reply"),
    ("The student added wrong. The answer is 24.", "missing 'Incorrect Step:' section"),
    ("Incorrect Step: 1\nCorrect Solution: The answer is 24", "missing 'Explanation:' section"),
    ("Incorrect Step: 1\nExplanation: x", "missing 'Correct Solution:' section"),
    ("Incorrect Step:\nExplanation: x\nCorrect Solution: The answer is 24", "'Incorrect Step:' is empty"),
    ("Incorrect Step: 1\nExplanation:   \nCorrect Solution: The answer is 24", "'Explanation:' is empty"),
    ("Incorrect Step: 1\nExplanation: x\nCorrect Solution:\n", "'Correct Solution:' is empty"),
    ("Incorrect Step: 1\nExplanation: x\nCorrect Solution: 76 then 24",
     "the corrected solution has no final 'The answer is ...'"),
    ("Incorrect Step: 1\nExplanation: x\nCorrect Solution: The answer is .",
     "the corrected solution has no final 'The answer is ...'"),
    ('{"incorrect_step": 1}', "missing 'Incorrect Step:' section"),
])
def test_malformed_corrections_are_recorded_as_failures(reply, error):
    parsed = parse_lema_correction(reply)
    assert (parsed.ok, parsed.error) == (False, error)
    assert parsed.raw == (reply or "")


def test_a_failure_keeps_the_sections_it_found():
    parsed = parse_lema_correction("Incorrect Step: 1\nExplanation: x\nCorrect Solution: 76 then 24")
    assert (parsed.incorrect_step, parsed.explanation, parsed.corrected_solution) == ("1", "x", "76 then 24")


def correction(answer: str | None, ok: bool = True) -> LemaCorrection:
    return LemaCorrection(ok, "" if ok else "x", "", "1", "x", f"The answer is {answer}", answer)


@pytest.mark.parametrize("answer,gold,choices,scorer,kept", [
    ("24", "24", (), "lema_gsm8k", True),
    ("$24.00", "24", (), "lema_gsm8k", True),
    ("25", "24", (), "lema_gsm8k", False),
    ("24", "24", (), "numeric", True),
    ("\\frac{1}{2}", "\\frac{1}{2}", (), "math_boxed", True),
    ("0.5", "\\frac{1}{2}", (), "math", True),
    # LbT's rule reads the bare last line, so the answer is scored alone.
    ("5", "5", (), "lbt_math", True),
    ("bank", "bank", ("bank", "river", "shop", "park", "lake"), "csqa_nearest", True),
    ("(B)", "B", ("x", "y"), "choice", True),
    ("(A)", "B", ("x", "y"), "salam_mc", False),
])
def test_the_auto_check_scores_the_corrected_answer_with_the_datasets_scorer(answer, gold, choices, scorer, kept):
    assert lema_auto_check(correction(answer), gold, choices, scorer) is kept


def test_the_auto_check_scores_only_the_final_answer():
    # FAIR's rule reads the first number after "Answer"; a middle step must not be what it sees.
    parsed = parse_lema_correction("Incorrect Step: 1\nExplanation: x\nCorrect Solution:\nAnswer 99 is wrong.\n"
                                   "The answer is 24")
    assert lema_auto_check(parsed, "24", (), "fair_numeric")


def test_a_correction_that_did_not_parse_is_never_kept():
    assert not lema_auto_check(correction("24", ok=False), "24", (), "numeric")
    assert not lema_auto_check(correction(None), "24", (), "numeric")


def test_end_to_end_parse_then_check():
    assert lema_auto_check(parse_lema_correction(GOOD), PROBLEM.gold_answer, (), "lema_gsm8k")
