"""The import service: atomic, idempotent, precise about bad files; splits and dataset naming."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.splits import SplitRule
from tests.webapp.datasets.helpers import gsm8k_lines, write_gsm8k
from webapp.datasets.models import Dataset, DatasetImport, ImportStatus, Problem
from webapp.datasets.services import ImportOptions, ImportRejected, dataset_import_create, dataset_import_run

pytestmark = pytest.mark.django_db


def run_import(paths, **options) -> DatasetImport:
    job = dataset_import_create(user=None, options=ImportOptions(**options), paths=[Path(p) for p in paths])
    return dataset_import_run(import_id=job.pk)


def test_a_gsm8k_file_becomes_a_dataset_with_gold_answers(tmp_path):
    job = run_import([write_gsm8k(tmp_path / "grade.jsonl", 10)])
    assert job.status == ImportStatus.SUCCEEDED, job.error
    assert (job.detected_format, job.records_read, job.problems_added) == ("gsm8k", 10, 10)
    dataset = job.dataset
    assert (dataset.name, dataset.benchmark, dataset.scorer) == ("grade", "gsm8k", "numeric")
    first = dataset.problems.order_by("position").first()
    assert first.gold_answer == "2" and "<<" not in first.gold_rationale
    assert dataset.problems.filter(split="test").count() == 2  # seeded 20% by default


def test_a_generic_file_name_is_prefixed_with_its_format(tmp_path):
    job = run_import([write_gsm8k(tmp_path / "test.jsonl", 3)])
    assert job.dataset.name == "gsm8k test"
    # The file's name says "test": the auto rule keeps that split for every problem.
    assert set(job.dataset.problems.values_list("split", flat=True)) == {"test"}


def test_reimporting_the_same_file_adds_nothing(tmp_path):
    path = write_gsm8k(tmp_path / "grade.jsonl", 10)
    run_import([path])
    again = run_import([path])
    assert again.status == ImportStatus.SUCCEEDED
    assert (again.problems_added, again.problems_skipped) == (0, 10)
    assert Problem.objects.count() == 10


def test_a_grown_file_adds_only_the_new_problems(tmp_path):
    run_import([write_gsm8k(tmp_path / "grade.jsonl", 10)])
    job = run_import([write_gsm8k(tmp_path / "grade.jsonl", 15)])
    assert (job.problems_added, job.problems_skipped) == (5, 10)
    assert Problem.objects.count() == 15


def test_a_bad_record_late_in_the_file_adds_nothing_and_names_the_line(tmp_path):
    path = tmp_path / "grade.jsonl"
    path.write_text("\n".join(gsm8k_lines(50) + ['{"question": "no answer here"}']) + "\n")
    job = run_import([path])
    assert job.status == ImportStatus.FAILED
    assert "line 51" in job.error and "answer" in job.error
    assert Dataset.objects.count() == 0 and Problem.objects.count() == 0


def test_a_failure_while_adding_to_an_existing_dataset_leaves_it_untouched(tmp_path):
    run_import([write_gsm8k(tmp_path / "grade.jsonl", 5)])
    bad = tmp_path / "more.jsonl"
    bad.write_text("\n".join(gsm8k_lines(5, start=100) + ["{broken"]) + "\n")
    job = run_import([bad], dataset_name="grade")
    assert job.status == ImportStatus.FAILED
    assert Problem.objects.count() == 5


def test_a_file_of_another_benchmark_cannot_join_a_dataset(tmp_path):
    run_import([write_gsm8k(tmp_path / "grade.jsonl", 5)])
    svamp = tmp_path / "svamp.json"
    svamp.write_text('[{"ID": "chal-1", "Body": "A has 3.", "Question": "How many?", "Equation": "( 3.0 )", "Answer": 3.0, "Type": "Addition"}]')
    job = run_import([svamp], dataset_name="grade")
    assert job.status == ImportStatus.FAILED and "holds gsm8k problems" in job.error


def test_an_explicit_seed_gives_the_same_split_twice(tmp_path):
    path = write_gsm8k(tmp_path / "grade.jsonl", 40)
    first = run_import([path], dataset_name="one", split=SplitRule(rule="seeded", seed=3))
    second = run_import([path], dataset_name="two", split=SplitRule(rule="seeded", seed=3))
    splits = lambda job: list(job.dataset.problems.order_by("position").values_list("split", flat=True))  # noqa: E731
    assert splits(first) == splits(second)
    assert splits(first).count("test") == 8


def test_an_import_whose_worker_died_can_run_again(tmp_path):
    job = dataset_import_create(user=None, options=ImportOptions(), paths=[write_gsm8k(tmp_path / "g.jsonl", 4)])
    DatasetImport.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING)  # as a killed worker leaves it
    job = dataset_import_run(import_id=job.pk)
    assert job.status == ImportStatus.SUCCEEDED and job.problems_added == 4


def test_a_finished_import_is_not_run_twice(tmp_path):
    job = run_import([write_gsm8k(tmp_path / "g.jsonl", 4)])
    Problem.objects.all().delete()
    assert dataset_import_run(import_id=job.pk).status == ImportStatus.SUCCEEDED
    assert Problem.objects.count() == 0


def test_missing_files_and_unknown_formats_are_refused_before_anything_starts(tmp_path):
    with pytest.raises(ImportRejected, match="no such file"):
        dataset_import_create(user=None, options=ImportOptions(), paths=[tmp_path / "nope.jsonl"])
    with pytest.raises(ImportRejected, match="unknown format 'csv'"):
        dataset_import_create(user=None, options=ImportOptions(format="csv"), paths=[write_gsm8k(tmp_path / "g.jsonl", 1)])
    assert DatasetImport.objects.count() == 0


def test_an_explicit_format_that_does_not_fit_fails_precisely(tmp_path):
    job = run_import([write_gsm8k(tmp_path / "g.jsonl", 2)], format="svamp")
    assert job.status == ImportStatus.FAILED and "g.jsonl" in job.error
