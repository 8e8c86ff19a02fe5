"""LbT teaching rationales (the [[Final Answer]]: block) and GSI teacher help (free-text corrections)."""

from __future__ import annotations

import pytest

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.guidance import teacher_help_messages
from pipeline.prompts import PRESETS
from pipeline.scoring import score
from pipeline.teaching import gsi_help_messages, lbt_rationale_messages, parse_gsi_help, parse_lbt_rationale

MATH = ProblemRecord(external_id="math_1", question="What is $\\frac{1}{2} + \\frac{1}{4}$?",
                     gold_answer="\\frac{3}{4}",
                     gold_rationale="Common denominator 4: 2/4 + 1/4 = 3/4.")


def test_the_lbt_prompt_asks_for_the_presets_final_block():
    user = lbt_rationale_messages(MATH)[-1]["content"]
    assert MATH.question in user
    assert PRESETS["lbt"].final_answer("<final result>") in user
    assert "3}{4}" not in user


@pytest.mark.parametrize("reply,rationale,answer", [
    ("Add the fractions: 2/4 + 1/4 = 3/4.\n[[Final Answer]]:\n\\frac{3}{4}\n", "Add the fractions: 2/4 + 1/4 = 3/4.",
     "\\frac{3}{4}"),
    ("Work.\n[[Final Answer]]: 5", "Work.", "5"),  # on the marker's line
    ("Work.\n**[[Final Answer]]:**\n\n  5  \n", "Work.", "5"),  # bold marker, blank line before the answer
    ("Work.\n[[final answer]]\n7", "Work.", "7"),  # no colon, other case
    # The last marker decides; an earlier one (a draft) stays in the rationale.
    ("Draft\n[[Final Answer]]:\n4\nOops, recheck.\n[[Final Answer]]:\n5", "Draft\n[[Final Answer]]:\n4\nOops, recheck.",
     "5"),
    ("Lösung: ½ + ¼ = ¾\n[[Final Answer]]:\n¾", "Lösung: ½ + ¼ = ¾", "¾"),
])
def test_well_formed_rationales_parse(reply, rationale, answer):
    parsed = parse_lbt_rationale(reply)
    assert (parsed.ok, parsed.error, parsed.rationale, parsed.answer) == (True, "", rationale, answer)
    assert parsed.raw == reply


@pytest.mark.parametrize("reply,error,rationale", [
    ("", "empty reply", ""),
    (None, "empty reply", ""),
    ("The answer is 5.", "no '[[Final Answer]]:' marker", "The answer is 5."),
    ("Work.\n[[Final Answer]]:\n  \n", "nothing after the '[[Final Answer]]:' marker", "Work."),
    ("[[Final Answer]]:\n5", "no rationale before the '[[Final Answer]]:' marker", ""),
    ("Work. [[Final Answer]]: 5", "no '[[Final Answer]]:' marker", "Work. [[Final Answer]]: 5"),  # not at a line start
    ("Work.\n[Final Answer]:\n5", "no '[[Final Answer]]:' marker", "Work.\n[Final Answer]:\n5"),
])
def test_malformed_rationales_are_recorded_as_failures(reply, error, rationale):
    parsed = parse_lbt_rationale(reply)
    assert (parsed.ok, parsed.error, parsed.rationale) == (False, error, rationale)


def test_a_parsed_rationale_scores_with_lbts_rule():
    parsed = parse_lbt_rationale("2/4 + 1/4 = 3/4\n[[Final Answer]]:\n\\frac{3}{4}\n")
    assert score("lbt_math", f"[[Final Answer]]:\n{parsed.answer}\n", MATH.gold_answer).correct


WRONG = AttemptRecord("math_1", output="1/2 + 1/4 = 2/6\nThe answer is 2/6", extracted="2/6", correct=False)


def test_gsi_help_is_the_guidance_modules_teacher_prompt():
    assert gsi_help_messages(MATH, WRONG) == teacher_help_messages(MATH, WRONG)


@pytest.mark.parametrize("reply,ok,text,error", [
    ("You added the denominators; use a common denominator.", True,
     "You added the denominators; use a common denominator.", ""),
    ("  \n  Step 1 is wrong.\n", True, "Step 1 is wrong.", ""),
    ('{"reason": "x"}', True, '{"reason": "x"}', ""),  # any text is a correction, JSON included
    ("", False, "", "empty reply"),
    (" \n\t", False, "", "empty reply"),
    (None, False, "", "empty reply"),
])
def test_parse_gsi_help(reply, ok, text, error):
    parsed = parse_gsi_help(reply)
    assert (parsed.ok, parsed.text, parsed.error, parsed.raw) == (ok, text, error, reply or "")
