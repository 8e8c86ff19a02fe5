"""FAIR committee: prompts, the last bracketed peer score, the > 3 rule, who reviews whom, FAIR's released file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.teaching import (
    fair_accepts, fair_feedback_messages, fair_peer_review_messages, fair_rationale_messages, mean_peer_score,
    parse_fair_feedback, parse_fair_rationale, parse_peer_score, peer_review_plan, valid_score,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
RATIONALES = SHARED / "seed-data" / "fair" / "Llama-2-7b-chat-hf_svamp_rationale_round0.json"
TEACHERS = ("gpt", "gemini", "mistral")

PROBLEM = ProblemRecord(external_id="svamp_0", question="290 bananas are put in 2 groups. How big is each group?",
                        gold_answer="145")
WRONG = AttemptRecord("svamp_0", output="Answer: 290 + 2 = 292", extracted="292", correct=False)
CHOICE = ProblemRecord(external_id="logiqa_1", question="Which follows?", gold_answer="C",
                       choices=("all", "some", "none"))


def test_feedback_prompt_hints_the_gold_answer_by_default():
    user = fair_feedback_messages(PROBLEM, WRONG)[-1]["content"]
    assert PROBLEM.question in user and "Answer: 290 + 2 = 292" in user
    assert "the correct answer is: 145" in user


def test_feedback_prompt_can_hint_another_answer_and_shows_option_text():
    assert "the correct answer is: 150" in fair_feedback_messages(PROBLEM, WRONG, hint_answer="150")[-1]["content"]
    wrong = AttemptRecord("logiqa_1", output="(A)", extracted="A", correct=False)
    assert "the correct answer is: (C) none" in fair_feedback_messages(CHOICE, wrong)[-1]["content"]


def test_rationale_prompt_has_the_question_and_no_answer():
    prompt = "\n".join(m["content"] for m in fair_rationale_messages(PROBLEM))
    assert PROBLEM.question in prompt and "145" not in prompt


def test_peer_review_prompt_has_the_rationale_the_reference_and_the_bracket_instruction():
    user = fair_peer_review_messages(PROBLEM, "  290 / 2 = 145. Answer: 145  ")[-1]["content"]
    assert "---\n290 / 2 = 145. Answer: 145\n---" in user
    assert "Reference answer: 145" in user  # FAIR's reviewers see the gold answer too
    assert "1" in user and "5" in user and "square brackets" in user


@pytest.mark.parametrize("reply,score", [
    ("Clear and correct. [4]", 4),
    ("[4/5]", 4),
    ("[ 3 ]", 3),
    ("Rating: [5 / 5]", 5),
    ("[4 out of 5]", 4),
    ("[Score: 2]", 2),
    ("[[4]]", 4),  # the inner bracket is the score
    ("**[5]**", 5),
    ("Final score: [3].", 3),
    ("[4.]", 4),
    ("[4] ... on reflection [2]", 2),  # the last one decides
    ("Step [1] is fine; overall [4]", 4),
    ("[4] See [Step 2] and [see above].", 4),  # brackets that are not ratings are passed over
    ("Good [4]\n\n[Note: the units are missing]", 4),
    ("Très clair, 解答正确 [5] 👍", 5),
    # Not usable: the last rating decides even when an earlier one was fine.
    ("[six]", None),  # FAIR's parser needs digits too
    ("[four]", None),
    ("[4] then [six]", None),
    ("[0]", None),
    ("[7]", None),
    ("[4] then [7]", None),
    ("[3.5]", None),  # not a whole score (FAIR's would read the last digit, 5)
    ("[8/10]", None),  # another scale
    ("[-3]", None),  # "-3" does not look like a rating; nothing else does either
    ("I rate it 4 out of 5.", None),  # no brackets: FAIR falls back to the last number, Errata does not
    ("", None),
    (None, None),
    ("[]", None),
    ("[4\n]", None),  # a line break inside brackets: not a bracketed score
])
def test_parse_peer_score(reply, score):
    assert parse_peer_score(reply) == score


@pytest.mark.parametrize("scores,mean,accepted", [
    ([4, 3], 3.5, True),
    ([3, 3], 3.0, False),  # exactly 3 is not above 3
    ([4, None], 4.0, True),
    ([None, None], None, False),
    ([5, 1], 3.0, False),
    ([], None, False),
    ([4, 4, 1], 3.0, False),
    ([5, 0], 5.0, True),  # 0 is FAIR's "no score", not a score
    ([83, 5], 5.0, True),
    ([True, 4], 4.0, True),  # a bool is not a score
    ([2, 2], 2.0, False),
])
def test_fair_acceptance_by_hand(scores, mean, accepted):
    assert mean_peer_score(scores) == mean
    assert fair_accepts(scores) is accepted


@pytest.mark.parametrize("value,valid", [(1, True), (5, True), (0, False), (6, False), (3.0, False), (None, False),
                                         ("4", False), (True, False)])
def test_valid_score(value, valid):
    assert valid_score(value) is valid


def test_peer_review_plan_has_each_rationale_scored_by_each_other_teacher():
    assert peer_review_plan(["gpt", "gemini", "mistral"]) == [
        ("gpt", "gemini"), ("gpt", "mistral"), ("gemini", "gpt"), ("gemini", "mistral"),
        ("mistral", "gpt"), ("mistral", "gemini"),
    ]
    assert peer_review_plan(["a", "b"]) == [("a", "b"), ("b", "a")]


@pytest.mark.parametrize("teachers,message", [
    (["a"], "at least two teachers"),
    ([], "at least two teachers"),
    (["a", "b", "a"], "each teacher may be listed once"),
])
def test_peer_review_plan_refuses_a_committee_that_cannot_review(teachers, message):
    with pytest.raises(ValueError, match=message):
        peer_review_plan(teachers)


@pytest.mark.parametrize("parse", [parse_fair_feedback, parse_fair_rationale])
def test_feedback_and_rationale_replies_are_free_text(parse):
    assert parse("  You divided instead of adding.  ").text == "You divided instead of adding."
    empty = parse(" \n")
    assert (empty.ok, empty.error, empty.raw) == (False, "empty reply", " \n")


@pytest.mark.shared
@pytest.mark.skipif(not RATIONALES.is_file(), reason="needs ../shared (not in a user's clone)")
def test_the_rule_reproduces_fairs_released_acceptance():
    """Every rationale in FAIR's released SVAMP file: accepted by our rule exactly when it is in correct_rationale."""
    rows = json.loads(RATIONALES.read_text())
    decisions = disagreements = 0
    for row in rows:
        for teacher in TEACHERS:
            text, *scores = row[f"{teacher}_rationale"]
            decisions += 1
            disagreements += fair_accepts(scores) != (text in row["correct_rationale"])
    assert (len(rows), decisions, disagreements) == (387, 1161, 0)
    assert sum(len(row["correct_rationale"]) for row in rows) == 826


@pytest.mark.shared
@pytest.mark.skipif(not RATIONALES.is_file(), reason="needs ../shared (not in a user's clone)")
def test_the_two_odd_scores_in_fairs_file_are_handled_like_fair():
    # Row 84: gemini's rationale scored [83, 5]; row 296: gpt's scored [5, 0] (FAIR's parse failure).
    # A plain mean would give 44 and 2.5; dropping invalid scores gives 5 and 5, and FAIR accepted both.
    rows = {row["id"]: row for row in json.loads(RATIONALES.read_text())}
    for row_id, teacher in ((84, "gemini"), (296, "gpt")):
        text, *scores = rows[row_id][f"{teacher}_rationale"]
        assert sorted(scores) in ([5, 83], [0, 5])
        assert fair_accepts(scores) and text in rows[row_id]["correct_rationale"]
