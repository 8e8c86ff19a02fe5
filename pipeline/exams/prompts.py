"""Exam prompts: plain, SALAM (the assistant's guideline and retrieved past cases before the question), LbT M1.

The question itself is always rendered by `pipeline.prompts` (the same wording and answer format as the
gather step), so an exam differs from a plain attempt only in what is put in front of the question.

SALAM's layout (dqwang122/SALAM ``src/model.py``): the guidance goes before the question in the same
prompt, guideline(s) first, then the retrieved cases separated by blank lines. Its cases read
"<question>\\nPrevious wrong answer is X. The correct answer is Y." (mistake memory) and
"<question>\\nThe correct answer is Y." (correct memory). SALAM's student is a completion model whose
prompt ends "The correct answer is "; here the preset's answer instruction ends the turn instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pipeline.benchmarks.records import ProblemRecord
from pipeline.exams.retrieval import PastCase
from pipeline.prompts import PromptConfig, student_messages
from pipeline.seeds.salam import prompt_text
from pipeline.seeds.salam_finetune import INSTRUCTION
from pipeline.teaching.salam import parse_salam_feedback

# A plain exam asks exactly as the gather step does (with `pipeline.prompts.choose_shots` for few-shot).
plain_messages = student_messages

# At test time SALAM asks its assistant about the question alone (TEMPLATE_TEST in src/utils/constants.py):
# the training prompt's instruction, without the student's answer and the gold, about the model's
# *potential* prediction. Built from the training instruction so the assistant sees the words it learnt.
TEST_INSTRUCTION = INSTRUCTION.replace("of the model prediction", "of the model potential prediction")


def assistant_messages(problem: ProblemRecord) -> list[dict]:
    """What SALAM's study assistant is asked at exam time: the question and options, then the JSON request."""
    return [{"role": "user", "content": f"{prompt_text(problem)}\n{TEST_INSTRUCTION}"}]


def parse_guideline(reply: object) -> str:
    """The guideline in the assistant's ``{reason, guideline}`` reply; "" when it is not that JSON (as SALAM)."""
    feedback = parse_salam_feedback(reply)
    return feedback.guideline.strip() if feedback.ok else ""


def case_text(case: PastCase) -> str:
    """A retrieved case as SALAM shows it to the student."""
    if case.correct:
        return f"{case.question}\nThe correct answer is {case.gold}."
    return f"{case.question}\nPrevious wrong answer is {case.answer}. The correct answer is {case.gold}."


def guidance_block(guideline: str = "", cases: Sequence[PastCase] = ()) -> str:
    """What goes before the question (and in the results table as "guidance shown"); "" when there is none.

    Both: the full SALAM exam. Guideline only: SALAM's assistant ablation. Cases only: its retrieval
    ablations (from the mistake memory, the correct memory, or both).
    """
    parts = [guideline.strip()] if guideline.strip() else []
    if cases:
        parts.append("\n\n".join(case_text(case) for case in cases))
    return "\n\n".join(parts)


def salam_messages(problem: ProblemRecord, cfg: PromptConfig, *, guideline: str = "",
                   cases: Sequence[PastCase] = ()) -> list[dict]:
    """The student's messages with SALAM's guidance in front of the question (plain when there is none)."""
    messages = student_messages(problem, cfg)
    block = guidance_block(guideline, cases)
    if block:
        messages[-1] = {**messages[-1], "content": f"{block}\n\n{messages[-1]['content']}"}
    return messages


def lbt_messages(problem: ProblemRecord, cfg: PromptConfig, *, teaching: ProblemRecord, rationale: str,
                 answer: str) -> list[dict]:
    """LbT M1: the teacher's rationale for ``teaching`` as the one worked example before the exam question.

    The example is a user/assistant turn pair (LbT's multi-round layout) written by `pipeline.prompts` as
    any few-shot example: the teaching question, then the rationale closed by the teacher's answer in the
    preset's final-line format. LbT's own prompts also prepend four fixed MATH examples; those are not used.
    """
    shot = replace(teaching, gold_rationale=rationale, gold_answer=answer)
    return student_messages(problem, replace(cfg, style="few_shot", k_shots=1), [shot])
