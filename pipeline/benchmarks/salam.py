"""SALAM seed files: mistake/correct collections (a JSON array) and status.json (per task train_set/test_set)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.benchmarks import bbh
from pipeline.benchmarks.fields import id_field, json_kind, single_benchmark, text_field
from pipeline.benchmarks.reading import Item, SourceFile, json_document
from pipeline.benchmarks.records import ProblemRecord

PROMPT, TARGET, OUTPUT = "response/prompt_str", "response/target_str", "response/output"
TASK_SUFFIXES = ("_zero_shot", "_few_shot")
SETS = {"train_set": "train", "test_set": "test"}


def looks_like_collection(value: Any) -> bool:
    return isinstance(value, dict) and {PROMPT, TARGET, "task"} <= value.keys()


def looks_like_status(value: Any) -> bool:
    """status.json is one object: task name -> {train_set: [...], test_set: [...], scores...}."""
    return isinstance(value, dict) and bool(value) and all(
        isinstance(entry, dict) and "train_set" in entry and "test_set" in entry for entry in value.values()
    )


def task_name(raw: str) -> str:
    """"date_understanding" for SALAM's "date_understanding_zero_shot"."""
    for suffix in TASK_SUFFIXES:
        if raw.endswith(suffix):
            return raw[: -len(suffix)]
    return raw


def convert_collection(item: Item) -> ProblemRecord:
    task = task_name(text_field(item, "task").strip())
    return _problem(item, f"{task}-{id_field(item, 'task_idx')}", task, item.source.split)


def status_items(source: SourceFile) -> Iterator[Item]:
    """Every record of every task's train_set and test_set, numbered within its list."""
    status = json_document(source)
    if not looks_like_status(status):
        raise source.error("expected SALAM's status.json: {task: {\"train_set\": [...], \"test_set\": [...]}}")
    for task, entry in status.items():
        for set_name in SETS:
            rows = entry[set_name]
            if not isinstance(rows, list):
                raise source.error(f"{task}: must be a list, got {json_kind(rows)}", field=set_name)
            for number, row in enumerate(rows, start=1):
                yield Item(row, source, number, record=number, context=f"{task} {set_name}")


def convert_status(item: Item) -> ProblemRecord:
    raw_task, set_name = item.context.split(" ")
    task, split = task_name(raw_task), SETS[set_name]
    # test_set rows carry no task_idx, so they are named by position.
    local_id = id_field(item, "task_idx") if split == "train" and "task_idx" in item.value else f"{split}-{item.index}"
    return _problem(item, f"{task}-{local_id}", task, split)


def _problem(item: Item, external_id: str, task: str, split: str) -> ProblemRecord:
    text = text_field(item, PROMPT)
    target = text_field(item, TARGET).strip()
    metadata = {
        "benchmark": "bbh" if task in bbh.TASKS else "bbq",
        "student_output": text_field(item, OUTPUT, ""),
        "target_option": text_field(item, "target_option", ""),
    }
    record = ProblemRecord(
        external_id=external_id, question=text.strip(), gold_answer=target, split=split, task=task,
        metadata={key: value for key, value in metadata.items() if value},
    )
    return bbh.with_lettered_options(item, record, text, target, target_field=TARGET)


def classify(records: list[ProblemRecord]) -> tuple[str, str]:
    benchmark = single_benchmark(records)
    return benchmark, "multiple_choice" if all(record.choices for record in records) else "text"
