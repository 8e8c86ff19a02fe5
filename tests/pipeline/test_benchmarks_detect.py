"""Formats are told apart by content, from our fixtures and from the real files in ../shared."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.benchmarks import DatasetFormatError, detect_format

FIXTURES = Path(__file__).parents[1] / "fixtures" / "benchmarks"
SHARED = Path(__file__).parents[2].parent / "shared"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared (not in a user's clone)")

FIXTURE_FORMATS = {
    "gsm8k/test.jsonl": "gsm8k",
    "svamp/SVAMP.json": "svamp",
    "bbh/boolean_expressions.json": "bbh",
    "bbh/logical_deduction_three_objects.json": "bbh",
    "bbh/navigate.json": "bbh",
    "bbh": "bbh",
    "bbq/Height.jsonl": "bbq",
    "bbq": "bbq",
    "strategyqa/dev.json": "strategyqa",
    "logiqa/Eval.txt": "logiqa",
    "math/test/algebra/1.json": "math",
    "math": "math",
    "lema/csqa_dev.jsonl": "lema_choice",
    "lema/aqua_test.jsonl": "lema_choice",
    "lema/gsm8k_test.jsonl": "lema_cot",
    "gsi/gsm8k.json": "gsi",
    "gsi/aqua_rat.json": "gsi",
    "gsi/svamp.json": "gsi",
    "salam/mistake_collections.json": "salam_collection",
    "salam/status.json": "salam_status",
}
FIXTURE_FILE_FORMATS = {name: kind for name, kind in FIXTURE_FORMATS.items() if "." in name}

SHARED_FORMATS = {
    "datasets/gsm8k/test.jsonl": "gsm8k",
    "datasets/gsm8k/train.jsonl": "gsm8k",
    "datasets/svamp/SVAMP.json": "svamp",
    "datasets/bbh": "bbh",
    "datasets/bbq": "bbq",
    "datasets/strategyqa/train.json": "strategyqa",
    "datasets/strategyqa/dev.json": "strategyqa",
    "datasets/logiqa/Eval.txt": "logiqa",
    "datasets/logiqa/Test.txt": "logiqa",
    "seed-data/lema/test_data/gsm8k_test.jsonl": "lema_cot",
    "seed-data/lema/test_data/csqa_dev.jsonl": "lema_choice",
    "seed-data/gsi/test/gsm8k.json": "gsi",
    "seed-data/gsi/test/svamp.json": "gsi",
    "seed-data/gsi/test/aqua_rat.json": "gsi",
    "seed-data/gsi/inference/cot/gsm8k.json": "gsi",
    "seed-data/salam/bbh/flan_t5/mistake_collections.json": "salam_collection",
    "seed-data/salam/bbh/flan_t5/correct_collections.json": "salam_collection",
    "seed-data/salam/bbq_sm/flan_t5/mistake_collections.json": "salam_collection",
    "seed-data/salam/bbq_sm/flan_t5/status.json": "salam_status",
}


@pytest.mark.parametrize(("relative", "expected"), FIXTURE_FORMATS.items())
def test_it_detects_each_fixture(relative, expected):
    assert detect_format(FIXTURES / relative) == expected


@pytest.mark.parametrize(("relative", "expected"), FIXTURE_FILE_FORMATS.items())
def test_detection_ignores_the_file_name(tmp_path, relative, expected):
    shutil.copy(FIXTURES / relative, tmp_path / "upload.dat")
    assert detect_format(tmp_path / "upload.dat") == expected


@needs_shared
@pytest.mark.parametrize(("relative", "expected"), SHARED_FORMATS.items())
def test_it_detects_each_real_file(relative, expected):
    assert detect_format(SHARED / relative) == expected


@needs_shared
@pytest.mark.parametrize("relative", [
    "seed-data/salam/finetune_data/bbq_src_data.json",
    "seed-data/fair/Llama-2-7b-chat-hf_svamp_false_round0.json",
])
def test_seed_files_that_are_not_problem_sets_are_refused(relative):
    with pytest.raises(DatasetFormatError, match="not a dataset in any known format"):
        detect_format(SHARED / relative)


@needs_shared
def test_it_detects_every_bbh_task_file():
    tasks = sorted((SHARED / "datasets" / "bbh").glob("*.json"))
    assert len(tasks) == 27
    assert {path.stem: detect_format(path) for path in tasks} == {path.stem: "bbh" for path in tasks}
