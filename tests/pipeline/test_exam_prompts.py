"""Exam prompts: plain as gather asks, SALAM's guidance before the question, LbT's rationale as the example."""

from __future__ import annotations

import json

import pytest

from pipeline.benchmarks.records import ProblemRecord
from pipeline.exams.prompts import (
    TEST_INSTRUCTION, assistant_messages, case_text, guidance_block, lbt_messages, parse_guideline, plain_messages,
    salam_messages,
)
from pipeline.exams.retrieval import PastCase
from pipeline.prompts import PromptConfig, student_messages, user_turn
from pipeline.seeds.salam_finetune import INSTRUCTION

CHOICE = ProblemRecord(external_id="mc-1", question="Which number is larger?", gold_answer="B",
                       choices=("three", "seven", "five"))
NUMBER = ProblemRecord(external_id="n-1", question="What is 4 + 4?", gold_answer="8")
MISTAKE = PastCase(1, "Which is smaller?\nOptions:\n(A) two\n(B) nine", "(B) nine", "(A) two", correct=False)
RIGHT = PastCase(2, "What is 1 + 1?", "2", "2", correct=True)
SALAM = PromptConfig(preset="salam")


def test_a_plain_exam_asks_as_the_gather_step_does():
    assert plain_messages(NUMBER, PromptConfig()) == student_messages(NUMBER, PromptConfig())


def test_the_assistant_is_asked_about_the_question_alone_with_salams_test_time_instruction():
    [message] = assistant_messages(CHOICE)
    assert message["role"] == "user"
    assert message["content"] == ("Which number is larger?\nOptions:\n(A) three\n(B) seven\n(C) five\n"
                                  + TEST_INSTRUCTION)
    # SALAM's TEMPLATE_TEST differs from its training instruction in one word: the *potential* prediction
    assert TEST_INSTRUCTION != INSTRUCTION
    assert "reason of the model potential prediction" in TEST_INSTRUCTION
    assert "seven" not in TEST_INSTRUCTION and "gold" not in message["content"].lower()


GUIDELINES = [
    ('{"reason": "It misread.", "guideline": " Compare every option. "}', "Compare every option."),
    ('Sure!\n```json\n{"reason": "r", "guideline": "g"}\n```', "g"),
    ("Just compare them.", ""),  # not the JSON: no guideline, as SALAM's post_feedback does
    ('{"reason": "r"}', ""),
    ("", ""),
]


@pytest.mark.parametrize("reply,guideline", GUIDELINES)
def test_parse_guideline(reply, guideline):
    assert parse_guideline(reply) == guideline


def test_cases_read_as_salams_memory_writes_them():
    assert case_text(MISTAKE) == ("Which is smaller?\nOptions:\n(A) two\n(B) nine\n"
                                  "Previous wrong answer is (B) nine. The correct answer is (A) two.")
    assert case_text(RIGHT) == "What is 1 + 1?\nThe correct answer is 2."


BLOCKS = [
    # guideline, cases, expected block: full SALAM, guideline only, retrieval only, nothing
    ("Compare all.", [MISTAKE, RIGHT], f"Compare all.\n\n{case_text(MISTAKE)}\n\n{case_text(RIGHT)}"),
    ("Compare all.", [], "Compare all."),
    ("", [MISTAKE], case_text(MISTAKE)),
    ("  ", [], ""),
]


@pytest.mark.parametrize("guideline,cases,expected", BLOCKS)
def test_guidance_block(guideline, cases, expected):
    assert guidance_block(guideline, cases) == expected


def test_salam_puts_the_guideline_and_cases_in_front_of_the_question():
    messages = salam_messages(CHOICE, SALAM, guideline="Compare all.", cases=[MISTAKE])
    plain = student_messages(CHOICE, SALAM)
    assert messages[:-1] == plain[:-1]  # the system message is untouched
    assert messages[-1]["content"] == f"Compare all.\n\n{case_text(MISTAKE)}\n\n{plain[-1]['content']}"
    assert plain[-1]["content"] == user_turn(CHOICE, "salam", "cot")  # and the input is not changed


def test_salam_with_nothing_to_show_is_the_plain_prompt():
    assert salam_messages(CHOICE, SALAM) == student_messages(CHOICE, SALAM)


def test_lbt_shows_the_teacher_rationale_as_the_worked_example():
    teaching = ProblemRecord(external_id="t-1", question="What is 2 + 3?", gold_answer="5", gold_rationale="gold")
    messages = lbt_messages(NUMBER, PromptConfig(preset="lbt"), teaching=teaching,
                            rationale="Two plus three makes five.", answer="5")
    roles = [m["role"] for m in messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert messages[1]["content"].startswith("What is 2 + 3?")
    # the teacher's rationale and answer, never the teaching problem's gold rationale
    assert messages[2]["content"] == "Two plus three makes five.\n[[Final Answer]]:\n5"
    assert messages[3]["content"] == user_turn(NUMBER, "lbt", "few_shot")


def test_lbt_writes_the_teachers_answer_even_when_it_is_wrong_and_drops_a_closing_answer_line():
    teaching = ProblemRecord(external_id="t-1", question="What is 2 + 3?", gold_answer="5")
    messages = lbt_messages(NUMBER, PromptConfig(), teaching=teaching,
                            rationale="2 + 3 = 6\nThe answer is 6", answer="6")
    assert messages[2]["content"] == "2 + 3 = 6\nThe answer is 6."
    json.dumps(messages)
