"""Exam fixtures: a scripted fake OpenAI-compatible server, datasets whose right answers the tests decide, and a
keyword embedder whose cosines can be worked out by hand (so SALAM and the guard need no MiniLM)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.benchmarks.records import ProblemRecord
from tests.fakeopenai import FakeOpenAI
from webapp.datasets.models import Dataset, Problem
from webapp.datasets.services import problems_add
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.models import Attempt
from webapp.runs.models import Run

# Each question starts with its own marker, so a scripted reply can be tied to it (the fake matches substrings).
TOPICS = ("apples", "trains", "clocks", "coins", "ropes")


def question(key: str, topic: str = "apples") -> str:
    return f"[{key}] Ann counts the {topic} in box {key}. How many {topic} are there?"


def reply(answer: object) -> str:
    return f"I count them one by one.\nThe answer is {answer}."


@pytest.fixture(scope="module")
def exam_server():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def server(exam_server, db):
    exam_server.configure()  # defaults, counters zeroed
    return exam_server


@pytest.fixture
def student(server) -> ModelEndpoint:
    return make_endpoint(server, "exam student")


def make_endpoint(server: FakeOpenAI, name: str, **roles) -> ModelEndpoint:
    return ModelEndpoint.objects.create(name=name, base_url=server.base_url, model_name=name.replace(" ", "-"),
                                        max_concurrency=4, **{"as_student": True, **roles})


def exam_dataset(test: dict[str, tuple[str, str]], *, train: dict[str, tuple[str, str]] | None = None,
                 name: str = "exam set") -> Dataset:
    """Problems keyed by marker: key -> (task, gold); test split first, then train. Topics follow the task."""
    records = []
    for split, problems in (("test", test), ("train", train or {})):
        for key, (task, gold) in problems.items():
            records.append(ProblemRecord(external_id=key, question=question(key, topic_of(task)), gold_answer=gold,
                                         split=split, task=task))
    dataset, _ = problems_add(name=name, benchmark="gsm8k", answer_format="number", records=records)
    return dataset


def topic_of(task: str) -> str:
    return task if task in TOPICS else "apples"


def script(server: FakeOpenAI, answers: dict[str, object], **settings) -> None:
    """The student answers the question with marker ``key`` with ``answers[key]`` (counters zeroed)."""
    server.configure(replies=[[f"[{key}]", reply(value)] for key, value in answers.items()], **settings)


def problem(dataset: Dataset, key: str) -> Problem:
    return Problem.objects.get(dataset=dataset, external_id=key)


def past_answer(dataset: Dataset, key: str, extracted: str, *, run: Run | None = None) -> Attempt:
    """A gather answer on a train problem (the SALAM memory), right or wrong by its gold."""
    run = run or Run.objects.get_or_create(kind="gather", name="memory", defaults={"config": {}, "status": "succeeded"})[0]
    target = problem(dataset, key)
    return Attempt.objects.create(run=run, problem=target, model_name="student", prompt="[]", raw_output=reply(extracted),
                                  extracted=extracted, correct=extracted == target.gold_answer, scorer="numeric")


class KeywordEmbedder:
    """One dimension per topic word: a text's vector counts the topics it names (any other text: a spare axis).

    Two questions about the same topic have cosine 1, about different topics 0: retrieval by topic, by hand.
    """

    def encode(self, texts):
        rows = []
        for text in texts:
            row = [float(text.count(topic)) for topic in TOPICS]
            rows.append(row + [0.0 if any(row) else 1.0])
        return np.array(rows).reshape(len(rows), len(TOPICS) + 1)


def keyword_embedder() -> KeywordEmbedder:
    return KeywordEmbedder()


@pytest.fixture
def keyword_embedding(settings):
    settings.ERRATA_EXAM_EMBEDDER = "tests.webapp.exams.conftest.keyword_embedder"
