"""LbT M1 exams: each rationale's score is the student's right answers with it; MAX, SUM and majority pick the answers
worked out by hand here, ties included; a rerun asks nothing again.

The fake HTTP server answers by the last user message only, so every rationale of a problem scores the same
there: that is the tie case. To give rationales different scores, the second test answers in-process, by which
rationale the request shows.
"""

from __future__ import annotations

import re

import pytest

from pipeline.models import ChatResult
from tests.webapp.exams.conftest import exam_dataset, problem, reply
from webapp.exams import lbt as lbt_mode
from webapp.exams.models import ExamAnswer
from webapp.exams.services import exam_estimate, exam_execute, exam_launch
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunStatus
from webapp.runs.services import run_requeue
from webapp.teach.models import Feedback

pytestmark = pytest.mark.django_db

TEST = {"x0": ("apples", "5"), "x1": ("apples", "3")}
POOL = {"p0": ("apples", "10"), "p1": ("apples", "11"), "p2": ("apples", "12"), "p3": ("trains", "13")}


def teacher_run(dataset, rationales: dict[str, list[str]]) -> Run:
    """An LbT teacher run whose rationale k for problem ``key`` answers ``rationales[key][k]``."""
    run = Run.objects.create(kind="teach", name="lbt rationales", config={"method": "lbt"}, status="succeeded")
    for key, answers in rationales.items():
        for k, answer in enumerate(answers):
            text = f"Rationale R{key}{k}: count each apple once."
            Feedback.objects.create(run=run, problem=problem(dataset, key), method="lbt", teacher_name="teacher",
                                    sample_index=k, raw_output=f"{text}\n[[Final Answer]]:\n{answer}", text=text,
                                    fields={"rationale": text, "answer": answer}, corrected_answer=answer)
    return run


def lbt_exam(researcher, student, dataset, teacher, **lbt):
    run = exam_launch(user=researcher, data={"student_endpoint_id": student.pk, "dataset_ids": [dataset.pk], "mode": "lbt",
                                             "use_cache": False, "lbt": {"teacher_run_id": teacher.pk,
                                                                         "related_rule": "same_task", **lbt}})
    exam_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_equal_scores_over_http_go_to_the_answer_seen_last(researcher, server, student, keyword_embedding):
    dataset = exam_dataset(TEST, train=POOL)
    teacher = teacher_run(dataset, {"x0": ["5", "6"]})  # x1 has no rationale: it is left out
    server.configure(replies=[["[p0]", reply(10)], ["[p1]", reply(11)], ["[p2]", reply(99)], ["[p3]", reply(13)]])
    run = lbt_exam(researcher, student, dataset, teacher, related_rule="similar", exam_problems=3, repetitions=2)
    [answer] = ExamAnswer.objects.filter(run=run)
    # "similar": the three apples problems (cosine 1 with the apples question), not the trains one (cosine 0).
    assert answer.lbt["related"] == [problem(dataset, key).pk for key in ("p0", "p1", "p2")]
    # Both rationales score 4 of 6 (p0 and p1 right, twice each); one rationale per answer: a tie on (score, count)
    # under every rule, which LbT's sorted(...)[-1] gives to the answer seen last, "6" (wrong).
    assert [r["score"] for r in answer.lbt["rationales"]] == [4, 4] and answer.lbt["rationales"][0]["out_of"] == 6
    assert {rule: (c["answer"], c["correct"]) for rule, c in answer.lbt["rules"].items()} == {
        "max": ("6", False), "sum": ("6", False), "majority": ("6", False)}
    assert (answer.answer, answer.correct, answer.problem.external_id) == ("6", False, "x0")
    assert Attempt.objects.filter(run=run).count() == 12 and server.stats()["received"]["chat"] == 6  # 2 x 3, n=2
    assert run.progress_total == 12 and run.counts["lbt"] == {"max": 0, "sum": 0, "majority": 0}


# Rationales for x0 (gold 5): answer, and the (related problem, repetition) pairs the student gets right with it.
ALL = {(p, r) for p in ("p0", "p1", "p2") for r in (0, 1)}
X0 = [("7", ALL), ("5", {(p, r) for p in ("p0", "p1") for r in (0, 1)}), ("5", {("p0", 0), ("p0", 1), ("p1", 0), ("p1", 1)}),
      ("8", {("p0", 0)}), ("8", {("p0", 0)}), ("8", {("p0", 0)})]
X1 = [("3", {("p0", 0), ("p1", 0)}), ("4", {("p2", 0), ("p2", 1)})]  # gold 3


class RationaleStudent:
    """Answers right when the (rationale, related problem, repetition) is in the table; counts its requests."""

    def __init__(self, dataset):
        self.right = {(f"Rx0{k}", p, r) for k, (_, pairs) in enumerate(X0) for p, r in pairs}
        self.right |= {(f"Rx1{k}", p, r) for k, (_, pairs) in enumerate(X1) for p, r in pairs}
        self.gold = {key: gold for key, (_, gold) in POOL.items()}
        self.requests = 0

    def __call__(self, *, run_id, endpoint, requests, use_cache=True):
        results = []
        for request in requests:
            self.requests += 1
            rationale = re.search(r"Rationale (R\w+):", request.messages[-2]["content"]).group(1)
            related = re.search(r"\[(p\d)\]", request.messages[-1]["content"]).group(1)
            texts = [reply(self.gold[related] if (rationale, related, request.sample_index + i) in self.right else 0)
                     for i in range(request.n)]
            results.append(ChatResult(request.key, texts, ["stop"] * request.n, 10, 10, 0.0, 0.01, False, 1, None))
        return results


def test_max_sum_and_majority_pick_the_hand_computed_answers(researcher, student, monkeypatch):
    dataset = exam_dataset(TEST, train=POOL)
    teacher = teacher_run(dataset, {"x0": [a for a, _ in X0], "x1": [a for a, _ in X1]})
    estimate = exam_estimate({"student_endpoint_id": student.pk, "dataset_ids": [dataset.pk], "mode": "lbt",
                              "lbt": {"teacher_run_id": teacher.pk, "related_rule": "same_task", "repetitions": 2}})
    assert (estimate["requests"], estimate["answers"]) == (8 * 3, 8 * 3 * 2)  # rationales x related, x repetitions
    fake = RationaleStudent(dataset)
    monkeypatch.setattr(lbt_mode, "run_ask", fake)
    run = lbt_exam(researcher, student, dataset, teacher, exam_problems=3, repetitions=2)
    answers = {a.problem.external_id: a for a in ExamAnswer.objects.filter(run=run).select_related("problem")}

    x0 = answers["x0"].lbt
    assert [r["score"] for r in x0["rationales"]] == [6, 4, 4, 1, 1, 1]
    # Groups: "7" (max 6, sum 6, 1 rationale), "5" (max 4, sum 8, 2), "8" (max 1, sum 3, 3).
    # MAX -> "7" (wrong), SUM -> "5" (right), majority -> "8" (wrong); the exam's answer is MAX's.
    assert {rule: (c["answer"], c["correct"]) for rule, c in x0["rules"].items()} == {
        "max": ("7", False), "sum": ("5", True), "majority": ("8", False)}
    assert x0["rules"]["sum"]["sum_score"] == 8 and x0["rules"]["majority"]["rationales"] == 3
    assert (answers["x0"].answer, answers["x0"].correct) == ("7", False)
    assert answers["x0"].guidance == "Rationale Rx00: count each apple once."  # the best-scored rationale

    x1 = answers["x1"].lbt
    # "3" scores 2 and "4" scores 2, one rationale each: a tie everywhere, won by "4", seen last (wrong).
    assert [r["score"] for r in x1["rationales"]] == [2, 2]
    assert {rule: c["answer"] for rule, c in x1["rules"].items()} == {"max": "4", "sum": "4", "majority": "4"}

    run.refresh_from_db()
    assert run.counts["lbt"] == {"max": 0, "sum": 1, "majority": 0} and fake.requests == (6 + 2) * 3

    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    run_requeue(run=run)
    exam_execute(run_id=run.pk)
    assert fake.requests == 24 and Attempt.objects.filter(run=run).count() == 8 * 3 * 2  # nothing asked twice


def test_the_report_shows_the_three_rules(researcher, student, monkeypatch, annotator_client):
    from django.urls import reverse

    dataset = exam_dataset(TEST, train=POOL)
    teacher = teacher_run(dataset, {"x0": [a for a, _ in X0], "x1": [a for a, _ in X1]})
    monkeypatch.setattr(lbt_mode, "run_ask", RationaleStudent(dataset))
    run = lbt_exam(researcher, student, dataset, teacher, exam_problems=3, repetitions=2)
    page = annotator_client.get(reverse("exams:report", args=[run.pk])).content.decode()
    assert "MAX (the exam's answer)" in page and "Majority (baseline)" in page
    assert "1 / 2" in page  # SUM: x0 right, x1 wrong
    trace = annotator_client.get(ExamAnswer.objects.get(run=run, problem__external_id="x0").get_absolute_url())
    assert "Teacher rationales (LbT scores)" in trace.content.decode() and "6 / 6" in trace.content.decode()
