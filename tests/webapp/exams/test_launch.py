"""Launching exams: refusals that say what is wrong, the form with its estimate, the API, and who may launch."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.webapp.exams.conftest import exam_dataset, make_endpoint, past_answer
from webapp.exams.services import ExamLaunchError, exam_estimate, exam_launch
from webapp.runs.models import Run, RunKind

pytestmark = pytest.mark.django_db

PROBLEMS = {"a0": ("apples", "3"), "a1": ("apples", "4"), "t0": ("trains", "5")}
TRAIN = {"m0": ("apples", "7"), "m1": ("trains", "8")}


@pytest.fixture
def dataset(db):
    return exam_dataset(PROBLEMS, train=TRAIN)


def config(student, dataset, **changes) -> dict:
    return {"student_endpoint_id": student.pk, "dataset_ids": [dataset.pk], **changes}


REFUSALS = [
    # (changes, words the refusal must contain)
    ({"split": "train", "tasks": ["clocks"]}, "has no train problems matching this filter"),
    ({"dataset_ids": [999999]}, "no dataset #999999"),
    ({"mode": "salam"}, "salam.assistant_endpoint_id: the guideline comes from a study assistant"),
    ({"mode": "salam", "salam": {"assistant_endpoint_id": 999999}}, "no active model endpoint #999999 for the assistant"),
    ({"mode": "salam", "salam": {"guideline": False}}, "nothing to retrieve: no gather run recorded mistakes"),
    ({"mode": "lbt"}, "lbt.teacher_run_id: choose the LbT teacher run"),
    ({"execution": "gpu_queue"}, "execution gpu_queue is for gather runs"),
    ({"samples_per_problem": 0}, "samples_per_problem must be a whole number from 1 to 64"),
    ({"near_duplicates": "yes"}, "near_duplicates must be true or false"),
    ({"prompt": {"style": "few_shot", "k_shots": 3}}, "the train split has only 2 problem(s)"),
]


@pytest.mark.parametrize("changes,words", REFUSALS)
def test_an_exam_that_cannot_run_is_refused_with_the_reason(researcher, student, dataset, changes, words):
    with pytest.raises(ExamLaunchError, match=words.replace("(", r"\(").replace(")", r"\)")):
        exam_launch(user=researcher, data=config(student, dataset, **changes))
    assert not Run.objects.filter(kind=RunKind.EXAM).exists()


def test_salam_refuses_an_endpoint_that_is_not_an_assistant(researcher, server, student, dataset):
    with pytest.raises(ExamLaunchError, match="exam student may not play the assistant"):
        exam_launch(user=researcher, data=config(student, dataset, mode="salam", salam={"assistant_endpoint_id": student.pk}))


def test_lbt_refuses_a_teacher_run_without_rationales_for_these_problems(researcher, student, dataset):
    lema = Run.objects.create(kind="teach", name="lema", config={"method": "lema"})
    lbt = Run.objects.create(kind="teach", name="lbt", config={"method": "lbt"})
    with pytest.raises(ExamLaunchError, match=f"run #{lema.pk} is a teach run of lema, not an LbT teacher run"):
        exam_launch(user=researcher, data=config(student, dataset, mode="lbt", lbt={"teacher_run_id": lema.pk}))
    with pytest.raises(ExamLaunchError, match=f"teacher run #{lbt.pk} has no parsed LbT rationales for these 3 problems"):
        exam_launch(user=researcher, data=config(student, dataset, mode="lbt", lbt={"teacher_run_id": lbt.pk}))


def test_a_launch_records_the_frozen_config_and_the_work_to_do(researcher, student, dataset,
                                                              django_capture_on_commit_callbacks):
    past_answer(dataset, "m0", "9")
    assistant = make_endpoint_like(student, "helper", as_assistant=True)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        run = exam_launch(user=researcher, data=config(student, dataset, mode="salam", samples_per_problem=2,
                                                       salam={"assistant_endpoint_id": assistant.pk}, near_duplicates=False))
    assert len(queued) == 1 and run.kind == RunKind.EXAM and run.progress_total == 6
    assert run.config["salam"]["top_k"] == 3 and run.config["salam"]["threshold"] == 0.9  # SALAM's defaults
    assert run.config["near_duplicates"] is False and run.name == "salam exam of exam student on exam set"


def make_endpoint_like(student, name, **roles):
    from webapp.endpoints.models import ModelEndpoint

    return ModelEndpoint.objects.create(name=name, base_url=student.base_url, model_name=name, **roles)


def test_the_estimate_counts_requests_answers_and_the_assistant(student, dataset, server):
    student.price_out_per_1k = 2
    student.save()
    past_answer(dataset, "m0", "9")
    assistant = make_endpoint(server, "helper", as_assistant=True)
    estimate = exam_estimate(config(student, dataset, mode="salam", samples_per_problem=4, decoding={"max_tokens": 100},
                                    salam={"assistant_endpoint_id": assistant.pk}))
    # 3 problems: 3 student requests of 4 samples and 3 assistant requests, at most 100 tokens each.
    assert (estimate["problems"], estimate["answers"], estimate["requests"], estimate["assistant_requests"]) == (3, 12, 6, 3)
    assert estimate["completion_tokens"] == 3 * 4 * 100 + 3 * 100 and estimate["cost"] == pytest.approx(2.4)


FORM = {"student": None, "datasets": None, "split": "test", "mode": "plain", "samples_per_problem": 1, "majority_vote": "on",
        "style": "cot", "preset": "errata", "k_shots": 0, "temperature": 0, "max_tokens": 64, "sample_size": 0,
        "sample_seed": 0, "near_duplicates": "on"}


def test_the_form_estimates_then_launches(researcher_client, student, dataset, django_capture_on_commit_callbacks):
    form = {**FORM, "student": student.pk, "datasets": [dataset.pk]}
    estimate = researcher_client.post(reverse("exams:new"), {**form, "estimate": "1"}, HTTP_HX_REQUEST="true")
    assert "3 problems, 3 student answers" in estimate.content.decode() and not Run.objects.filter(kind="exam").exists()
    with django_capture_on_commit_callbacks(execute=False):
        response = researcher_client.post(reverse("exams:new"), form)
    run = Run.objects.get(kind=RunKind.EXAM)
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.config["dataset_ids"] == [dataset.pk] and run.config["mode"] == "plain" and run.config["salam"] is None


def test_the_form_shows_a_refusal(researcher_client, student, dataset):
    response = researcher_client.post(reverse("exams:new"), {**FORM, "student": student.pk, "datasets": [dataset.pk],
                                                             "mode": "lbt"})
    assert response.status_code == 400 and b"choose the LbT teacher run" in response.content


def test_annotators_may_not_launch_by_page_or_api(annotator_client, student, dataset):
    assert annotator_client.get(reverse("exams:new")).status_code == 403
    response = annotator_client.post("/api/exams/", {"config": config(student, dataset)}, content_type="application/json")
    assert response.status_code == 403 and not Run.objects.filter(kind="exam").exists()


def test_the_api_estimates_and_launches(researcher_client, student, dataset, django_capture_on_commit_callbacks):
    estimate = researcher_client.post("/api/exams/estimate/", {"config": config(student, dataset)}, content_type="application/json")
    assert estimate.status_code == 200 and estimate.json()["requests"] == 3
    refused = researcher_client.post("/api/exams/", {"config": config(student, dataset, split="train", tasks=["x"])},
                                     content_type="application/json")
    assert refused.status_code == 400 and "no train problems" in refused.json()["config"][0]
    with django_capture_on_commit_callbacks(execute=False):
        launched = researcher_client.post("/api/exams/", {"config": config(student, dataset), "name": "baseline"},
                                          content_type="application/json")
    assert launched.status_code == 201 and launched.json()["name"] == "baseline" and launched.json()["kind"] == "exam"
