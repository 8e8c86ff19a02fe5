"""Plain exams over real HTTP: a real Celery worker runs one to the end; results equal numbers worked out here;
a rerun asks nothing again and duplicates nothing; a run that lost requests resumes with only those."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from django.urls import reverse

from tests.conftest import wait_for
from tests.webapp.exams.conftest import exam_dataset, problem, script
from webapp.exams.models import ExamAnswer
from webapp.exams.services import exam_execute, exam_launch
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunStatus
from webapp.runs.services import run_requeue

Z = 1.959963984540054

# key -> (task, gold); the student's scripted answers make 5 of 8 right: 3 of 4 apples, 2 of 4 trains.
PROBLEMS = {f"a{i}": ("apples", str(10 + i)) for i in range(4)} | {f"t{i}": ("trains", str(20 + i)) for i in range(4)}
ANSWERS = {"a0": 10, "a1": 11, "a2": 12, "a3": 99, "t0": 20, "t1": 21, "t2": 98, "t3": 97}
RIGHT = {key for key, value in ANSWERS.items() if str(value) == PROBLEMS[key][1]}


def wilson(right: int, n: int) -> tuple[float, float]:
    """Wilson's 95% score interval, written out from its formula."""
    p = right / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def finished(run: Run) -> bool:
    run.refresh_from_db()
    return run.is_finished


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_plain_exam_and_the_report_shows_numbers_worked_out_independently(
        researcher, annotator_client, server, student, celery_worker_process):
    script(server, ANSWERS)
    dataset = exam_dataset(PROBLEMS)
    run = exam_launch(user=researcher, data={"student_endpoint_id": student.pk, "dataset_ids": [dataset.pk],
                                             "samples_per_problem": 3, "use_cache": False})
    wait_for(lambda: finished(run) or celery_worker_process.poll() is not None, timeout=90, what="the exam run")
    assert run.status == RunStatus.SUCCEEDED, run.error or celery_worker_process.log_path.read_text()

    answers = {a.problem.external_id: a for a in ExamAnswer.objects.filter(run=run).select_related("problem")}
    assert {key for key, a in answers.items() if a.correct} == RIGHT
    assert all(a.samples == 3 and a.votes == 3 and a.answer == str(ANSWERS[key]) for key, a in answers.items())
    assert Attempt.objects.filter(run=run).count() == 24 and server.stats()["received"]["chat"] == 8  # n=3 per request
    assert run.counts["correct"] == 5 and run.counts["scored"] == 8 and run.progress_done == 24

    page = annotator_client.get(reverse("exams:report", args=[run.pk])).content.decode()
    low, high = wilson(5, 8)
    assert f"{100 * 5 / 8:.1f}%" in page and f"{100 * low:.1f}–{100 * high:.1f}%" in page
    for task, right in (("apples", 3), ("trains", 2)):
        low, high = wilson(right, 4)
        assert f"<td>{task}</td><td class=\"num\">{right}</td><td class=\"num\">4</td>" in page
        assert f"{100 * right / 4:.1f}%" in page and f"{100 * low:.1f}–{100 * high:.1f}%" in page
    # SALAM's summary over tasks: lowest 50% (trains), highest 75% (apples), unweighted average 62.5%.
    assert "lowest 50.0% (trains), highest 75.0% (apples), average 62.5%" in page
    wrong = annotator_client.get(reverse("exams:report", args=[run.pk]), {"verdict": "wrong"}).context["page"]
    assert sorted(a.problem.external_id for a in wrong.object_list) == sorted(set(ANSWERS) - RIGHT)


@pytest.mark.django_db
def test_a_rerun_asks_nothing_again_and_duplicates_nothing(researcher, server, student, settings):
    settings.ERRATA_MODEL_MAX_RETRIES = 0
    script(server, ANSWERS, fault_rate=0.5, faults=["500"])  # about half the requests fail, for good
    dataset = exam_dataset(PROBLEMS)
    run = exam_launch(user=researcher, data={"student_endpoint_id": student.pk, "dataset_ids": [dataset.pk],
                                             "samples_per_problem": 2, "use_cache": False})
    exam_execute(run_id=run.pk)
    run.refresh_from_db()
    first = Attempt.objects.filter(run=run).count()
    assert run.status == RunStatus.FAILED and 0 < first < 16 and "Resume the run" in run.error
    answered_first = set(ExamAnswer.objects.filter(run=run).values_list("problem__external_id", flat=True))
    assert len(answered_first) == first // 2  # a problem's answer exists once both its samples are in

    script(server, ANSWERS)  # the server recovers; counters zeroed
    run_requeue(run=run)
    exam_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert server.stats()["received"]["chat"] == 8 - len(answered_first)  # only what was missing
    keys = Counter(Attempt.objects.filter(run=run).values_list("problem_id", "sample_index", "round"))
    assert len(keys) == 16 and max(keys.values()) == 1

    before = list(ExamAnswer.objects.filter(run=run).order_by("problem_id").values_list("problem_id", "answer", "correct"))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)  # as if the task were delivered twice
    exam_execute(run_id=run.pk)
    assert server.stats()["received"].get("chat", 0) == 8 - len(answered_first)  # no new request
    assert Attempt.objects.filter(run=run).count() == 16
    assert list(ExamAnswer.objects.filter(run=run).order_by("problem_id").values_list("problem_id", "answer", "correct")) == before
    assert {row[0] for row in before} == {problem(dataset, key).pk for key in PROBLEMS}
