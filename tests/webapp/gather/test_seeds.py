"""Seed answer files go into the database and come back out: the same records, field for field (byte for byte here)."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from webapp.datasets.models import Dataset
from webapp.gather.models import Attempt
from webapp.runs.models import Run

pytestmark = pytest.mark.django_db

SHARED_SEED_FILES = [
    ("salam/bbq_sm/flan_t5/status.json", "salam_status", 500, 158),
    ("salam/bbq_sm/flan_t5/mistake_collections.json", "salam_mistakes", 519, 519),
    ("salam/bbq_sm/flan_t5/correct_collections.json", "salam_correct", 1681, 0),
    ("salam/bbh/flan_t5/mistake_collections.json", "salam_mistakes", 1855, 1855),
    ("fair/Llama-2-7b-chat-hf_svamp_false_round0.json", "fair_false", 387, 387),
    ("fair/Llama-2-7b-chat-hf_strategyQA_false_round0.json", "fair_false", 825, 825),
]


@pytest.mark.parametrize("relative,format,answers,wrong", SHARED_SEED_FILES)
def test_a_seed_file_survives_the_database_round_trip(shared_dir, tmp_path, relative, format, answers, wrong):
    original = shared_dir / "seed-data" / relative
    call_command("import_seed", str(original))
    run = Run.objects.get()
    assert Attempt.objects.filter(run=run).count() == answers
    assert Attempt.objects.filter(run=run, correct=False).count() == wrong == run.counts["wrong"]
    exported = tmp_path / original.name
    call_command("export_seed", str(run.pk), str(exported), "--format", format)
    assert json.loads(exported.read_bytes()) == json.loads(original.read_bytes())
    assert exported.read_bytes() == original.read_bytes()


def test_importing_the_same_file_twice_adds_nothing(shared_dir):
    path = shared_dir / "seed-data" / "fair" / "Llama-2-7b-chat-hf_svamp_false_round0.json"
    call_command("import_seed", str(path))
    call_command("import_seed", str(path))
    assert Run.objects.count() == 1 and Attempt.objects.count() == 387
    assert Dataset.objects.get().benchmark == "svamp"


def test_a_fair_file_becomes_a_dataset_and_the_students_wrong_answers(tmp_path):
    records = [{"id": 1, "question": "Ann has 3 pens and buys 4. How many?", "gold_answer": "7",
                "student_wrong_pred": "Answer: 3 + 4 = 8", "student_wrong_final_answer": "8"},
               {"id": 2, "question": "Bo has 9 cards and gives 2 away. How many are left?", "gold_answer": "7",
                "student_wrong_pred": "Answer: 11", "student_wrong_final_answer": "11"}]
    path = tmp_path / "Tiny-student_svamp_false_round0.json"
    path.write_text(json.dumps(records, indent=4))
    call_command("import_seed", str(path), "--model-name", "tiny")
    attempts = Attempt.objects.select_related("problem").order_by("problem__position")
    assert [(a.problem.gold_answer, a.extracted, a.correct, a.model_name) for a in attempts] == [
        ("7", "8", False, "tiny"), ("7", "11", False, "tiny")]
    exported = tmp_path / "out.json"
    call_command("export_seed", str(Run.objects.get().pk), str(exported), "--format", "fair_false")
    assert json.loads(exported.read_text()) == records


def test_a_file_that_is_not_a_seed_answer_file_is_refused(tmp_path):
    path = tmp_path / "gsm8k.json"
    path.write_text(json.dumps([{"item_id": "gsm8k_1", "question": "q", "answer_value": "1"}]))
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_seed", str(path))
    assert Run.objects.count() == 0 and Dataset.objects.count() == 0


def test_the_pages_import_and_export_a_seed_file(researcher_client, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    records = [{"id": 7, "question": "How many legs do 2 cats have?", "gold_answer": "8",
                "student_wrong_pred": "Answer: 4", "student_wrong_final_answer": "4"}]
    body = json.dumps(records, indent=4).encode()
    response = researcher_client.post(reverse("gather:import-seed"),
                                      {"file": SimpleUploadedFile("Tiny_svamp_false_round0.json", body)})
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    page = researcher_client.get(run.get_absolute_url()).content.decode()
    assert "?format=fair_false" in page
    download = researcher_client.get(reverse("gather:export", args=[run.pk]), {"format": "fair_false"})
    assert download.status_code == 200 and json.loads(b"".join(download.streaming_content)) == records
    bad = researcher_client.get(reverse("gather:export", args=[run.pk]), {"format": "csv"})
    assert bad.status_code == 400 and b"unknown seed format" in bad.content


def test_the_import_page_says_what_is_wrong_with_a_bad_file(researcher_client):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    response = researcher_client.post(reverse("gather:import-seed"), {"file": SimpleUploadedFile("x.json", b"{not json")})
    assert response.status_code == 400 and b"Nothing was imported" in response.content
    assert Run.objects.count() == 0
