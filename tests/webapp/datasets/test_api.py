"""The REST API for datasets, problems and imports."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from pipeline.benchmarks.records import ProblemRecord
from tests.webapp.datasets.helpers import gsm8k_lines
from webapp.datasets.models import DatasetImport
from webapp.datasets.services import dataset_import_run, problems_add


def test_upload_through_the_api_then_poll_until_done(researcher_client, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("grade.jsonl", ("\n".join(gsm8k_lines(7)) + "\n").encode())
    with django_capture_on_commit_callbacks(execute=False):
        response = researcher_client.post("/api/imports/", {"files": [upload], "split_rule": "seeded", "seed": 4})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["options"]["seed"] == 4
    dataset_import_run(import_id=body["id"])  # what the worker does; tested with a real worker elsewhere
    done = researcher_client.get(f"/api/imports/{body['id']}/").json()
    assert (done["status"], done["problems_added"], done["detected_format"]) == ("succeeded", 7, "gsm8k")
    dataset = researcher_client.get(f"/api/datasets/{done['dataset']}/").json()
    assert dataset["problem_count"] == 7 and dataset["scorer"] == "numeric"


def test_bad_options_are_answered_field_by_field(researcher_client):
    upload = SimpleUploadedFile("grade.jsonl", b"{}\n")
    response = researcher_client.post("/api/imports/", {"files": [upload], "format": "csv", "test_fraction": 3})
    assert response.status_code == 400
    assert set(response.json()) == {"format", "test_fraction"}
    assert DatasetImport.objects.count() == 0


def test_problems_filter_by_dataset_split_and_words(researcher_client, db):
    records = [ProblemRecord(external_id=str(i), question="red ball" if i < 3 else "blue box", gold_answer="1",
                             split="test" if i % 2 else "train") for i in range(6)]
    dataset, _ = problems_add(name="balls", benchmark="gsm8k", answer_format="number", records=records)
    response = researcher_client.get("/api/problems/", {"dataset": dataset.pk, "q": "red", "split": "test"})
    assert [p["external_id"] for p in response.json()["results"]] == ["1"]


def test_a_dataset_can_be_renamed_and_deleted(researcher_client, db):
    dataset, _ = problems_add(name="old", benchmark="gsm8k", answer_format="number",
                              records=[ProblemRecord(external_id="1", question="q", gold_answer="1", split="test")])
    response = researcher_client.patch(f"/api/datasets/{dataset.pk}/", {"name": "new", "benchmark": "bbh"},
                                       content_type="application/json")
    assert response.status_code == 200 and response.json()["name"] == "new"
    assert response.json()["benchmark"] == "gsm8k"  # read-only: it decides how answers are scored
    assert researcher_client.delete(f"/api/datasets/{dataset.pk}/").status_code == 204


def test_the_openapi_schema_describes_the_import_endpoint(researcher_client):
    schema = researcher_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/imports/" in schema["paths"] and "post" in schema["paths"]["/api/imports/"]

