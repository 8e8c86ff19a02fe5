"""Teach pages and API: estimate then launch, per-teacher results, the feedback browser, template versions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.webapp.teach.test_teach import SALAM_ASKS, mistakes, server_a, teacher  # noqa: F401 (fixtures)
from webapp.runs.models import Run, RunKind
from webapp.teach.models import Feedback, PromptTemplate
from webapp.teach.services import teach_execute

pytestmark = pytest.mark.django_db


def form(teacher_endpoint, gather_run, **changes) -> dict:
    return {"method": "salam", "teachers": [teacher_endpoint.pk], "gather_run": gather_run.pk, "split": "test",
            "samples": 1, "temperature": 0, "max_tokens": 100, **changes}


def test_the_form_estimates_then_launches(researcher_client, mistakes, server_a, django_capture_on_commit_callbacks):
    t1 = teacher(server_a, "t1")
    t1.price_in_per_1k, t1.price_out_per_1k = 1, 2
    t1.save()
    estimate = researcher_client.post(reverse("teach:new"), {**form(t1, mistakes), "estimate": "1"}, HTTP_HX_REQUEST="true")
    html = estimate.content.decode()
    # 3 mistakes, 1 teacher: 3 requests of at most 100 tokens at $2 per 1k: at most $0.6 of output.
    assert "about 3 requests" in html and "at most 300 completion tokens" in html and Run.objects.filter(kind="teach").count() == 0
    with django_capture_on_commit_callbacks(execute=False):
        response = researcher_client.post(reverse("teach:new"), form(t1, mistakes))
    run = Run.objects.get(kind=RunKind.TEACH)
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.config["method"] == "salam" and run.progress_total == 3


def test_fair_with_one_teacher_is_refused_in_the_page(researcher_client, mistakes, server_a):
    response = researcher_client.post(reverse("teach:new"), form(teacher(server_a, "t1"), mistakes, method="fair"))
    assert response.status_code == 400 and b"at least two teachers" in response.content


def test_the_run_page_shows_each_teachers_results_and_the_browser_filters(researcher_client, researcher, mistakes, server_a):
    server_a.configure(replies=[[SALAM_ASKS, "not json"]])
    from webapp.teach.services import teach_launch

    run = teach_launch(user=researcher, data={"method": "salam", "teacher_endpoint_ids": [teacher(server_a, "t1").pk],
                                              "gather_run_id": mistakes.pk, "use_cache": False})
    teach_execute(run_id=run.pk)
    page = researcher_client.get(run.get_absolute_url()).content.decode()
    assert "Feedback by teacher" in page and ">t1</a>" in page
    listed = researcher_client.get(reverse("teach:feedback-list"), {"run": run.pk, "check": "parse_failed"}).context["page"]
    assert listed.paginator.count == 3
    detail = researcher_client.get(listed.object_list[0].get_absolute_url()).content.decode()
    assert "parse failed" in detail and "not json" in detail


def test_the_api_estimates_launches_and_lists_feedback(researcher_client, mistakes, server_a, django_capture_on_commit_callbacks):
    config = {"method": "salam", "teacher_endpoint_ids": [teacher(server_a, "t1").pk], "gather_run_id": mistakes.pk}
    estimate = researcher_client.post("/api/teach-runs/estimate/", {"config": config}, content_type="application/json")
    assert estimate.status_code == 200 and estimate.json()["requests"] == 3
    with django_capture_on_commit_callbacks(execute=False):
        launched = researcher_client.post("/api/teach-runs/", {"config": config}, content_type="application/json")
    assert launched.status_code == 201
    bad = researcher_client.post("/api/teach-runs/", {"config": {**config, "method": "x"}}, content_type="application/json")
    assert bad.status_code == 400 and "method must be one of" in bad.json()["config"][0]
    assert researcher_client.get("/api/feedback/", {"run": launched.json()["id"]}).json()["count"] == 0


def test_editing_a_template_in_the_page_saves_a_new_version(researcher_client):
    url = reverse("teach:template-edit", args=["salam_feedback"])
    assert researcher_client.get(url).status_code == 200
    bad = researcher_client.post(url, {"system": "", "user": "{question} {secret}", "note": "x"})
    assert bad.status_code == 400 and b"secret" in bad.content
    good = researcher_client.post(url, {"system": "Kind.", "user": "{question}\n{student_solution}\nExplain why it is wrong.",
                                        "note": "short"})
    assert good.status_code == 302
    assert list(PromptTemplate.objects.filter(name="salam_feedback").values_list("version", flat=True)) == [2, 1]
    assert Feedback.objects.count() == 0


def test_teachers_can_be_asked_about_a_selection_from_the_mistakes_browser(researcher_client, mistakes, server_a,
                                                                             django_capture_on_commit_callbacks):
    browser = researcher_client.get(reverse("gather:attempts"), {"correct": "no", "q": "Problem 2:"}).content.decode()
    assert 'id="teach-these"' in browser
    page = researcher_client.get(reverse("teach:new"), {"mistakes": "correct=no&q=Problem+2%3A"}).content.decode()
    assert "Teaching the <strong>1</strong> mistake of your selection" in page
    with django_capture_on_commit_callbacks(execute=False):
        researcher_client.post(reverse("teach:new"), {**form(teacher(server_a, "t1"), mistakes),
                                                      "mistakes_filter": "correct=no&q=Problem+2%3A"})
    run = Run.objects.get(kind=RunKind.TEACH)
    assert run.config["gather_run_id"] is None and run.progress_total == 1
    from webapp.gather.models import Attempt

    assert list(Attempt.objects.filter(pk__in=run.config["attempt_ids"]).values_list("problem__external_id", flat=True)) == ["m2"]
