"""Released feedback and seed answer files uploaded through the pages and the API, not only the commands."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.webapp.teach.test_imports import FAIR_ROWS, SALAM_INSTANCES, fair_feedback_file, fair_rationale_file, salam_file
from webapp.runs.models import Run, RunKind
from webapp.teach.models import Feedback

pytestmark = pytest.mark.django_db


def upload(path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type="application/json")


def test_the_page_imports_salam_feedback_and_says_what_it_added(researcher_client, tmp_path):
    page = researcher_client.get(reverse("teach:import"))
    assert page.status_code == 200 and b'enctype="multipart/form-data"' in page.content
    response = researcher_client.post(reverse("teach:import"), {"file": upload(salam_file(tmp_path)),
                                                                "teacher_name": "gpt-4o"}, follow=True)
    run = Run.objects.get(kind=RunKind.TEACH)
    assert response.redirect_chain[-1][0] == run.get_absolute_url()
    assert f"{len(SALAM_INSTANCES)} feedback (imported:gpt-4o {len(SALAM_INSTANCES)}); 1 parse failures" in response.content.decode()
    assert set(Feedback.objects.values_list("teacher_name", flat=True)) == {"imported:gpt-4o"}

    again = researcher_client.post(reverse("teach:import"), {"file": upload(salam_file(tmp_path))}, follow=True)
    assert "Already imported as run" in again.content.decode()
    assert Run.objects.filter(kind=RunKind.TEACH).count() == 1


def test_the_page_refuses_a_bad_file_and_adds_nothing(researcher_client):
    bad = SimpleUploadedFile("broken.json", b'{"type": "text2text", "instances": [{"input": 1}]}')
    response = researcher_client.post(reverse("teach:import"), {"file": bad})
    assert response.status_code == 400 and b"Nothing was imported" in response.content
    assert not Run.objects.exists() and not Feedback.objects.exists()


def test_the_api_imports_both_halves_of_a_fair_round_into_one_run(researcher_client, tmp_path):
    first = researcher_client.post("/api/teach-runs/import/", {"file": upload(fair_feedback_file(tmp_path))})
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["already"] is False and body["run"]["kind"] == "teach"
    assert Feedback.objects.count() == 2 * len(FAIR_ROWS)  # two teachers, one feedback each per wrong answer

    second = researcher_client.post("/api/teach-runs/import/", {"file": upload(fair_rationale_file(tmp_path))})
    assert second.status_code == 201, second.content
    assert second.json()["run"]["id"] == body["run"]["id"]
    assert "joined run" in second.json()["report"][0]

    repeat = researcher_client.post("/api/teach-runs/import/", {"file": upload(fair_feedback_file(tmp_path))})
    assert repeat.status_code == 200 and repeat.json()["already"] is True


def test_the_api_answers_a_bad_file_or_option_field_by_field(researcher_client, tmp_path):
    fair_with_teacher = researcher_client.post("/api/teach-runs/import/", {"file": upload(fair_feedback_file(tmp_path)),
                                                                           "teacher_name": "someone"})
    assert fair_with_teacher.status_code == 400
    assert "names its own teachers" in fair_with_teacher.json()["file"][0]
    unknown = researcher_client.post("/api/teach-runs/import/", {"file": upload(salam_file(tmp_path)), "format": "csv"})
    assert unknown.status_code == 400 and set(unknown.json()) == {"format"}
    assert not Run.objects.exists()


def test_annotators_cannot_import(annotator_client, tmp_path):
    assert annotator_client.get(reverse("teach:import")).status_code == 403
    assert annotator_client.post("/api/teach-runs/import/", {"file": upload(salam_file(tmp_path))}).status_code == 403
    assert annotator_client.post("/api/gather-runs/import/", {"file": upload(salam_file(tmp_path))}).status_code == 403
    assert not Run.objects.exists()


def test_the_api_imports_a_seed_answer_file_once(researcher_client):
    records = [{"id": 7, "question": "How many legs do 2 cats have?", "gold_answer": "8",
                "student_wrong_pred": "Answer: 4", "student_wrong_final_answer": "4"}]
    body = json.dumps(records, indent=4).encode()
    first = researcher_client.post("/api/gather-runs/import/", {"file": SimpleUploadedFile("Tiny_svamp_false_round0.json", body),
                                                                "model_name": "llama-2"})
    assert first.status_code == 201, first.content
    run = Run.objects.get(kind=RunKind.GATHER)
    assert first.json()["id"] == run.pk and run.counts["wrong"] == 1
    again = researcher_client.post("/api/gather-runs/import/", {"file": SimpleUploadedFile("again.json", body)})
    assert again.status_code == 200 and again.json()["id"] == run.pk
    bad = researcher_client.post("/api/gather-runs/import/", {"file": SimpleUploadedFile("x.json", b"{not json")})
    assert bad.status_code == 400 and bad.json()["file"][0].startswith("Nothing was imported")
