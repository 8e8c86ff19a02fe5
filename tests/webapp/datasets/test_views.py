"""Dataset pages: list with empty state, problem browser with search and pages, upload form and progress page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from pipeline.benchmarks.records import ProblemRecord
from tests.webapp.datasets.helpers import gsm8k_lines
from webapp.datasets.models import DatasetImport, ImportStatus
from webapp.datasets.services import problems_add


@pytest.fixture
def dataset(db):
    records = [ProblemRecord(external_id=f"p{i}", question=f"How many apples does crate {i} hold?" if i % 2 else f"Pears in box {i}?",
                             gold_answer=str(i), split="train" if i % 5 else "test", task="fruit") for i in range(1, 121)]
    dataset, _ = problems_add(name="fruit", benchmark="gsm8k", answer_format="number", records=records)
    return dataset


def test_the_list_shows_an_empty_state_with_the_way_to_import(researcher_client):
    response = researcher_client.get(reverse("datasets:list"))
    assert b"No datasets yet" in response.content and reverse("datasets:import").encode() in response.content


def test_the_list_counts_problems_per_split(researcher_client, dataset):
    response = researcher_client.get(reverse("datasets:list"))
    row = response.context["datasets"][0]
    assert (row.problem_count, row.train_count, row.test_count) == (120, 96, 24)


def test_the_browser_pages_through_problems_fifty_at_a_time(researcher_client, dataset):
    page2 = researcher_client.get(reverse("datasets:detail", args=[dataset.pk]), {"page": 2}).context["page"]
    assert page2.number == 2 and len(page2.object_list) == 50
    assert page2.object_list[0].external_id == "p51"


def test_search_filters_by_words_and_split(researcher_client, dataset):
    response = researcher_client.get(reverse("datasets:detail", args=[dataset.pk]), {"q": "apples crate", "split": "test"})
    found = [p.external_id for p in response.context["page"].object_list]
    assert found == ["p5", "p15", "p25", "p35", "p45", "p55", "p65", "p75", "p85", "p95", "p105", "p115"]


def test_htmx_search_gets_only_the_results_partial(researcher_client, dataset):
    response = researcher_client.get(reverse("datasets:detail", args=[dataset.pk]), {"q": "pears"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results">') and "<html" not in html
    assert "60 problems" in html


def test_a_search_with_no_match_says_so(researcher_client, dataset):
    response = researcher_client.get(reverse("datasets:detail", args=[dataset.pk]), {"q": "zebra"})
    assert b"No problems match" in response.content


def test_problem_page_escapes_question_text(researcher_client, db):
    records = [ProblemRecord(external_id="x", question="<script>alert(1)</script> 2+2?", gold_answer="4")]
    dataset, _ = problems_add(name="xss", benchmark="gsm8k", answer_format="number", records=records)
    response = researcher_client.get(dataset.problems.get().get_absolute_url())
    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content


def test_uploading_a_file_queues_an_import_and_redirects_to_its_progress(researcher_client, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("grade.jsonl", ("\n".join(gsm8k_lines(5)) + "\n").encode())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = researcher_client.post(reverse("datasets:import"), {"files": [upload], "split_rule": "auto", "seed": 0, "test_fraction": 0.2})
    job = DatasetImport.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert job.status == ImportStatus.QUEUED and len(callbacks) == 1  # the Celery task is sent on commit
    page = researcher_client.get(job.get_absolute_url())
    assert b'hx-trigger="every 1s"' in page.content  # the page polls until the import finishes


def test_htmx_upload_is_redirected_by_header(researcher_client):
    upload = SimpleUploadedFile("grade.jsonl", ("\n".join(gsm8k_lines(2)) + "\n").encode())
    response = researcher_client.post(reverse("datasets:import"), {"files": [upload], "split_rule": "auto", "seed": 0, "test_fraction": 0.2},
                                      HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Redirect"] == DatasetImport.objects.get().get_absolute_url()


def test_the_form_without_a_file_says_what_is_missing(researcher_client):
    response = researcher_client.post(reverse("datasets:import"), {"split_rule": "auto", "seed": 0, "test_fraction": 0.2})
    assert response.status_code == 400 and b"This field is required" in response.content
    assert DatasetImport.objects.count() == 0


def test_a_failed_import_page_shows_the_error_and_stops_polling(researcher_client, researcher):
    job = DatasetImport.objects.create(upload_dir="", content_sha256="0" * 64, status=ImportStatus.FAILED,
                                       error="bad.jsonl, line 3, field 'answer': missing", created_by=researcher)
    response = researcher_client.get(job.get_absolute_url())
    assert b"Nothing was imported" in response.content and b"line 3" in response.content
    assert b"every 1s" not in response.content


def test_problem_page_title_is_only_the_problem(researcher_client, dataset):
    html = researcher_client.get(dataset.problems.first().get_absolute_url()).content.decode()
    title = html.split("<title>")[1].split("</title>")[0]
    assert title.strip() == "Problem p1 · Errata"
    assert html.count("Answers to this problem") == 1
