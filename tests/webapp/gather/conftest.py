"""Gather fixtures: a fake OpenAI-compatible student, and datasets whose right answers the test knows in advance."""

from __future__ import annotations

import pytest

from pipeline.benchmarks.records import ProblemRecord
from pipeline.prompts import PromptConfig, student_messages
from tests.fakeopenai import FakeOpenAI
from webapp.datasets.services import problems_add
from webapp.endpoints.models import ModelEndpoint


@pytest.fixture(scope="module")
def fake_student_server():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_student(fake_student_server, db):
    fake_student_server.configure()  # defaults, counters zeroed
    return ModelEndpoint.objects.create(name="fake student", base_url=fake_student_server.base_url,
                                        model_name="fake", as_student=True, as_teacher=True, max_concurrency=4)


def fake_answer(record: ProblemRecord, prompt: PromptConfig = PromptConfig()) -> int:
    """What the fake server answers: the length of the last user message it receives."""
    return len(student_messages(record, prompt)[-1]["content"])


def known_dataset(count: int, *, right_every: int = 2, name: str = "known", split: str = "train"):
    """A dataset where the fake student is right on every ``right_every``-th problem and wrong on the others."""
    records = []
    for index in range(count):
        base = ProblemRecord(external_id=f"k{index}", question=f"Question number {index}: " + "x" * index,
                             gold_answer="0", gold_rationale=f"Step one.\nStep two.\nThe answer is {index}.",
                             split=split, task="even" if index % 2 == 0 else "odd")
        gold = fake_answer(base) + (0 if index % right_every == 0 else 1)
        records.append(ProblemRecord(**{**base.__dict__, "gold_answer": str(gold)}))
    dataset, _ = problems_add(name=name, benchmark="gsm8k", answer_format="number", records=records)
    return dataset
