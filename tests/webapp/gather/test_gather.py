"""Gather runs against a real HTTP model server: counts, accuracy, resumption, GSI rounds, the pages and the API."""

from __future__ import annotations

from collections import Counter

import pytest
from django.urls import reverse

from pipeline.scoring import score
from tests.webapp.gather.conftest import known_dataset
from webapp.gather.models import Attempt
from webapp.gather.services import GatherLaunchError, gather_execute, gather_launch
from webapp.runs.models import Run, RunStatus

pytestmark = pytest.mark.django_db


def received(server) -> int:
    """Chat requests the fake server has received so far."""
    return sum(server.stats()["received"].values())


def config(dataset, student, **changes) -> dict:
    return {"dataset_id": dataset.pk, "student_endpoint_id": student.pk, **changes}


def launch_and_run(user, data) -> Run:
    run = gather_launch(user=user, data=data)
    gather_execute(run_id=run.pk)  # what the worker does; the real worker is tested in test_worker.py
    run.refresh_from_db()
    return run


def test_a_gather_run_answers_every_problem_and_scores_it(researcher, fake_student):
    dataset = known_dataset(12)
    run = launch_and_run(researcher, config(dataset, fake_student, samples_per_problem=2))
    assert run.status == RunStatus.SUCCEEDED, run.error
    attempts = list(Attempt.objects.filter(run=run).select_related("problem"))
    assert len(attempts) == 24 and run.progress_done == run.progress_total == 24
    # The fake student is right exactly on the even problems, both samples.
    assert {(a.problem.external_id, a.sample_index) for a in attempts if a.correct} == {
        (f"k{i}", s) for i in range(0, 12, 2) for s in (0, 1)}
    # Every verdict agrees with scoring the raw output again, independently.
    assert all(score("numeric", a.raw_output, a.problem.gold_answer).correct == a.correct for a in attempts)
    assert run.counts["correct"] == 12 and run.counts["wrong"] == 12
    assert run.counts["per_task"] == {"even": [12, 12], "odd": [0, 12]}
    assert run.requests == 12 and run.prompt_tokens > 0  # one request per problem asks for both samples (n=2)


def test_a_second_launch_with_the_cache_pays_nothing(researcher, fake_student, fake_student_server):
    dataset = known_dataset(6)
    launch_and_run(researcher, config(dataset, fake_student))
    before = received(fake_student_server)
    again = launch_and_run(researcher, config(dataset, fake_student))
    assert again.cached_requests == 6 and again.cost == 0
    assert received(fake_student_server) == before


def test_resuming_asks_only_for_what_is_missing(researcher, fake_student, fake_student_server):
    dataset = known_dataset(10)
    run = launch_and_run(researcher, config(dataset, fake_student, use_cache=False))
    Attempt.objects.filter(run=run, problem__external_id__in=["k1", "k2", "k3"]).delete()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)  # as run_requeue leaves it
    before = received(fake_student_server)
    gather_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert received(fake_student_server) - before == 3
    assert Attempt.objects.filter(run=run).count() == 10


def test_failed_requests_fail_the_run_with_the_reason_and_keep_the_answers(researcher, fake_student, fake_student_server):
    fake_student_server.configure(fault_rate=1.0, faults=["500"])
    fake_student.max_concurrency = 2
    fake_student.save()
    dataset = known_dataset(3)
    from django.test import override_settings

    with override_settings(ERRATA_MODEL_MAX_RETRIES=0):
        run = launch_and_run(researcher, config(dataset, fake_student, use_cache=False))
    assert run.status == RunStatus.FAILED
    assert "3 requests failed" in run.error and "HTTP 500" in run.error and "Resume" in run.error
    assert Attempt.objects.filter(run=run).count() == 0


def test_gsi_rounds_guide_only_the_problems_short_of_right_answers(researcher, fake_student):
    dataset = known_dataset(6)
    run = launch_and_run(researcher, config(
        dataset, fake_student, samples_per_problem=2, teacher_endpoint_id=fake_student.pk,
        guidance={"min_correct": 2, "max_resample": 3, "kinds": ["answer", "rationale", "teacher_help"]}))
    assert run.status == RunStatus.SUCCEEDED, run.error
    attempts = Attempt.objects.filter(run=run).select_related("problem")
    guided = [a for a in attempts if a.round > 0]
    # Even problems were right twice in the plain pass: never guided.
    assert {a.problem.external_id for a in guided} <= {"k1", "k3", "k5"}
    assert all(a.round <= 3 for a in attempts)
    kinds = {a.round: a.guidance for a in guided}
    assert all(kinds[r] == {1: "answer", 2: "rationale", 3: "teacher_help"}[r] for r in kinds)
    assert Counter((a.problem_id, a.sample_index, a.round) for a in attempts).most_common(1)[0][1] == 1
    for problem in ("k1", "k3", "k5"):
        rounds = sorted({a.round for a in attempts if a.problem.external_id == problem})
        right = sum(a.correct for a in attempts if a.problem.external_id == problem)
        # A problem is guided round after round until it has two right answers or rounds run out.
        assert rounds[-1] == 3 or right >= 2


@pytest.mark.parametrize("changes,message", [
    ({"split": "validation"}, "split must be train, test or all"),
    ({"samples_per_problem": 0}, "samples_per_problem must be a whole number"),
    ({"decoding": {"temperature": 7}}, "temperature must be in"),
    ({"decoding": {"n": 3}}, "samples_per_problem rather than n"),
    ({"guidance": {"min_correct": 3, "max_resample": 1, "kinds": ["answer"]}}, "min_correct"),
    ({"guidance": {"min_correct": 1, "max_resample": 1, "kinds": ["teacher_help"]}}, "teacher"),
    ({"prompt": {"style": "few_shot", "k_shots": 50}}, "k_shots"),
    ({"scorer": "nope"}, "unknown scorer 'nope'"),
    ({"tasks": ["no-such-task"]}, "has no train problems matching"),
    ({"colour": "blue"}, "unknown gather setting 'colour'"),
])
def test_bad_configurations_are_refused_before_anything_runs(researcher, fake_student, changes, message):
    dataset = known_dataset(4)
    with pytest.raises(GatherLaunchError) as error:
        gather_launch(user=researcher, data=config(dataset, fake_student, **changes))
    assert message in str(error.value)
    assert Run.objects.count() == 0


def test_an_endpoint_without_the_student_role_is_refused(researcher, fake_student):
    fake_student.as_student = False
    fake_student.save()
    with pytest.raises(GatherLaunchError, match="may not play the student"):
        gather_launch(user=researcher, data=config(known_dataset(2), fake_student))


def test_the_mistakes_browser_filters_by_verdict_task_and_words(researcher_client, researcher, fake_student):
    dataset = known_dataset(8)
    run = launch_and_run(researcher, config(dataset, fake_student))
    page = researcher_client.get(reverse("gather:attempts"), {"run": run.pk, "correct": "no"}).context["page"]
    assert {a.problem.external_id for a in page.object_list} == {"k1", "k3", "k5", "k7"}
    page = researcher_client.get(reverse("gather:attempts"), {"correct": "yes", "task": "even", "q": "xxxxx"}).context["page"]
    assert [a.problem.external_id for a in page.object_list] == ["k6"]  # the only even question with 5+ x
    problem_page = researcher_client.get(reverse("datasets:problem", args=[page.object_list[0].problem_id]))
    assert f"#{run.pk}".encode() in problem_page.content  # the problem lists every attempt on it


def test_the_page_form_launches_a_run(researcher_client, fake_student, django_capture_on_commit_callbacks):
    dataset = known_dataset(3)
    form = {"dataset": dataset.pk, "split": "train", "sample_size": 0, "sample_seed": 0, "student": fake_student.pk,
            "style": "cot", "preset": "errata", "k_shots": 0, "samples_per_problem": 1, "temperature": 0, "max_tokens": 64,
            "use_cache": "on", "min_correct": 0, "max_resample": 0, "samples_per_round": 1}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = researcher_client.post(reverse("gather:new"), form)
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.progress_total == 3 and len(callbacks) == 1
    assert b"every 1s" in researcher_client.get(run.get_absolute_url()).content


def test_the_api_launches_and_lists_mistakes(researcher_client, fake_student, django_capture_on_commit_callbacks):
    dataset = known_dataset(4)
    with django_capture_on_commit_callbacks(execute=False):
        response = researcher_client.post("/api/gather-runs/", {"config": config(dataset, fake_student)},
                                          content_type="application/json")
    assert response.status_code == 201, response.content
    gather_execute(run_id=response.json()["id"])
    mistakes = researcher_client.get("/api/attempts/", {"run": response.json()["id"], "correct": "no"}).json()
    assert mistakes["count"] == 2 and {m["problem_external_id"] for m in mistakes["results"]} == {"k1", "k3"}
    bad = researcher_client.post("/api/gather-runs/", {"config": config(dataset, fake_student, split="x")},
                                 content_type="application/json")
    assert bad.status_code == 400 and "split" in bad.json()["config"][0]


def test_the_launch_form_shows_every_option_group(researcher_client, fake_student):
    known_dataset(2)
    html = researcher_client.get(reverse("gather:new")).content.decode()
    for name in ("dataset", "student", "preset", "k_shots", "max_tokens", "min_correct", "guidance_kinds", "teacher"):
        assert f'name="{name}"' in html
    assert "GSI guided resampling" in html
