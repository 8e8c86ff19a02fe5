"""The real public datasets and seed files in ../shared load completely, with the documented row counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline.benchmarks import load

SHARED = Path(__file__).parents[2].parent / "shared"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared (not in a user's clone)")
DATASETS = SHARED / "datasets"
SEEDS = SHARED / "seed-data"


def test_gsm8k_train_and_test():
    loaded = load(DATASETS / "gsm8k")
    assert Counter(record.split for record in loaded.records) == {"test": 1319, "train": 7473}
    assert all(record.gold_answer.lstrip("-").replace(".", "", 1).isdigit() for record in loaded.records)
    assert not any("<<" in record.gold_rationale for record in loaded.records)


def test_all_27_bbh_tasks_load():
    loaded = load(DATASETS / "bbh")
    tasks = Counter(record.task for record in loaded.records)
    assert len(tasks) == 27 and len(loaded.records) == 6511
    assert (tasks["causal_judgement"], tasks["penguins_in_a_table"], tasks["snarks"]) == (187, 146, 178)
    assert loaded.answer_format == "text"


@pytest.mark.parametrize(("task", "answer_format"), [
    ("date_understanding", "multiple_choice"),
    ("geometric_shapes", "multiple_choice"),
    ("object_counting", "number"),
    ("multistep_arithmetic_two", "number"),
    ("web_of_lies", "text"),
    ("dyck_languages", "text"),
])
def test_bbh_task_answer_formats(task, answer_format):
    assert load(DATASETS / "bbh" / f"{task}.json").answer_format == answer_format


def test_bbh_multiple_choice_golds_are_letters_of_their_choices():
    for record in load(DATASETS / "bbh").records:
        if record.choices:
            assert ord(record.gold_answer) - ord("A") < len(record.choices)
            assert "\nOptions:\n(A)" not in record.question


def test_bbq_categories_and_conditions():
    loaded = load(DATASETS / "bbq")
    assert len(loaded.records) == 11956
    assert Counter(record.metadata["context_condition"] for record in loaded.records) == {
        "ambig": 5978, "disambig": 5978}
    assert {record.task for record in loaded.records} == {
        "Age", "Disability_status", "Nationality", "Physical_appearance", "Religion", "Sexual_orientation"}
    assert all(record.metadata["unknown_option"] in (0, 1, 2) for record in loaded.records)


def test_svamp():
    loaded = load(DATASETS / "svamp" / "SVAMP.json")
    assert len(loaded.records) == 1000
    assert loaded.records[0].gold_answer == "51"


def test_strategyqa_train_and_dev():
    loaded = load(DATASETS / "strategyqa")
    assert Counter(record.split for record in loaded.records) == {"train": 2061, "test": 229}
    train = [record for record in loaded.records if record.split == "train"]
    assert Counter(record.gold_answer for record in train) == {"true": 964, "false": 1097}


def test_logiqa_eval_and_test():
    loaded = load(DATASETS / "logiqa")
    assert len(loaded.records) == 1302
    assert all(len(record.choices) == 4 for record in loaded.records)
    assert {record.gold_answer for record in loaded.records} == {"A", "B", "C", "D"}


def test_lema_test_files():
    cot = load(SEEDS / "lema" / "test_data" / "gsm8k_test.jsonl")
    assert (cot.format, cot.benchmark, len(cot.records)) == ("lema_cot", "gsm8k", 1319)
    assert cot.records[0].gold_answer == "18"
    choice = load(SEEDS / "lema" / "test_data" / "csqa_dev.jsonl")
    assert (choice.format, choice.benchmark, len(choice.records)) == ("lema_choice", "csqa", 1221)
    assert all(len(record.choices) == 5 for record in choice.records)


@pytest.mark.parametrize(("relative", "benchmark", "count"), [
    ("test/gsm8k.json", "gsm8k", 1319),
    ("test/svamp.json", "svamp", 1000),
    ("test/aqua_rat.json", "aqua", 254),
    ("inference/cot/gsm8k.json", "gsm8k", 3000),
])
def test_gsi_files(relative, benchmark, count):
    loaded = load(SEEDS / "gsi" / relative)
    assert (loaded.benchmark, len(loaded.records)) == (benchmark, count)


def test_gsi_and_gsm8k_agree_on_gold_answers():
    gsi = load(SEEDS / "gsi" / "test" / "gsm8k.json").records
    gsm8k = load(DATASETS / "gsm8k" / "test.jsonl").records
    assert [record.gold_answer for record in gsi] == [record.gold_answer for record in gsm8k]


def test_salam_seed_collections_and_status():
    mistakes = load(SEEDS / "salam" / "bbh" / "flan_t5" / "mistake_collections.json")
    assert (mistakes.benchmark, len(mistakes.records)) == ("bbh", 1855)
    assert sum(1 for record in mistakes.records if record.choices) == 1852  # 3 upstream targets name no option
    status = load(SEEDS / "salam" / "bbq_sm" / "flan_t5" / "status.json")
    assert (status.format, status.benchmark) == ("salam_status", "bbq")
    assert Counter(record.split for record in status.records) == {"train": 400, "test": 100}
