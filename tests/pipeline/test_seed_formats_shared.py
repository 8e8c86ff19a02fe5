"""SALAM and FAIR student-answer files in ../shared/seed-data: read as problems and attempts, written back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.benchmarks.records import DatasetFormatError
from pipeline.seeds import read_seed_file, write_seed_file

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEED_DATA = SHARED / "seed-data"
pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not SEED_DATA.is_dir(), reason="needs ../shared (not in a user's clone)"),
]

# file -> (format, benchmark, problems, attempts, wrong attempts); the counts are checked against the raw JSON too
SEED_FILES = {
    "salam/bbh/flan_t5/correct_collections.json": ("salam_correct", "bbh", 1203, 1203, 0),
    "salam/bbh/flan_t5/mistake_collections.json": ("salam_mistakes", "bbh", 1855, 1855, 1855),
    "salam/bbq_sm/flan_t5/correct_collections.json": ("salam_correct", "bbq", 1681, 1681, 0),
    "salam/bbq_sm/flan_t5/mistake_collections.json": ("salam_mistakes", "bbq", 519, 519, 519),
    # 2 tasks x (200 train + 50 test); wrong: 60 + 63 train, 16 + 19 test
    "salam/bbq_sm/flan_t5/status.json": ("salam_status", "bbq", 500, 500, 158),
    "fair/Llama-2-7b-chat-hf_strategyQA_false_round0.json": ("fair_false", "strategyqa", 825, 825, 825),
    "fair/Llama-2-7b-chat-hf_svamp_false_round0.json": ("fair_false", "svamp", 387, 387, 387),
    "fair/Llama-2-7b-chat-hf_svamp_feedback_round0.json": ("fair_feedback", "svamp", 387, 387, 387),
    "fair/Llama-2-7b-chat-hf_svamp_rationale_round0.json": ("fair_rationale", "svamp", 387, 387, 387),
}
GSI_PROBLEM_FILES = ["gsi/test/gsm8k.json", "gsi/test/svamp.json", "gsi/test/aqua_rat.json",
                     "gsi/inference/cot/gsm8k.json"]


def raw_counts(data) -> tuple[int, int]:
    """(records, wrong) straight from the seed's JSON: status scores, else one record per answer."""
    if isinstance(data, dict):
        scores = [score for entry in data.values() for key in ("train_score", "test_score") for score in entry[key]]
        return len(scores), scores.count(0)
    return len(data), None


@pytest.mark.parametrize("name", SEED_FILES)
def test_a_seed_file_writes_back_field_for_field_and_byte_for_byte(name, tmp_path):
    original = SEED_DATA / name
    written = tmp_path / original.name
    write_seed_file(read_seed_file(original), written)
    assert json.loads(written.read_text(encoding="utf-8")) == json.loads(original.read_text(encoding="utf-8"))
    # Bytes too, for every file here: SALAM's json.dump(indent=2), FAIR's indent=4 and its one-line svamp file
    # are all read off the file (indent, separators, ASCII escapes, no final newline) and reproduced.
    assert written.read_bytes() == original.read_bytes()


@pytest.mark.parametrize(("name", "expected"), SEED_FILES.items())
def test_a_seed_file_is_detected_and_counted_as_the_file_says(name, expected):
    format, benchmark, problems, attempts, wrong = expected
    bundle = read_seed_file(SEED_DATA / name)
    assert (bundle.format, bundle.benchmark) == (format, benchmark)
    assert (len(bundle.problems), len(bundle.attempts)) == (problems, attempts)
    assert sum(not attempt.correct for attempt in bundle.attempts) == wrong
    records, raw_wrong = raw_counts(json.loads((SEED_DATA / name).read_text(encoding="utf-8")))
    assert records == attempts
    if raw_wrong is not None:
        assert raw_wrong == wrong


def test_status_splits_each_task_into_its_train_and_test_sets():
    bundle = read_seed_file(SEED_DATA / "salam/bbq_sm/flan_t5/status.json")
    splits = [problem.split for problem in bundle.problems]
    assert (splits.count("train"), splits.count("test")) == (400, 100)
    assert bundle.extra["tasks"] == ["Age_zero_shot", "Disability_status_zero_shot"]
    assert "task_entries" not in bundle.extra  # train_mistake/train_correct and the lists follow from the records


def test_the_status_mistakes_are_the_collection_mistakes_of_the_same_tasks():
    status = read_seed_file(SEED_DATA / "salam/bbq_sm/flan_t5/status.json")
    collection = read_seed_file(SEED_DATA / "salam/bbq_sm/flan_t5/mistake_collections.json")
    status_wrong = {attempt.problem_external_id for attempt, problem in zip(status.attempts, status.problems)
                    if not attempt.correct and problem.split == "train"}
    same_tasks = {a.problem_external_id for a in collection.attempts
                  if a.metadata["seed_fields"]["task"] in status.extra["tasks"]}
    assert status_wrong == same_tasks and len(status_wrong) == 123


@pytest.mark.parametrize("name", GSI_PROBLEM_FILES)
def test_a_gsi_problem_pool_is_not_taken_for_results(name):
    with pytest.raises(DatasetFormatError, match="without the student's pred"):
        read_seed_file(SEED_DATA / name)
    with pytest.raises(DatasetFormatError, match="is a dataset, not results") as error:
        read_seed_file(SEED_DATA / name, "gsi_results")
    assert (error.value.record, error.value.field) == (1, "pred")
