"""GSI JSON: arrays of ``{item_id, question, answer_value[, answer_cot, options]}`` (GSM8K, SVAMP, AQuA)."""

from __future__ import annotations

from string import ascii_uppercase
from typing import Any

from pipeline.benchmarks.fields import (
    canonical_number, choice_letter, field_value, id_field, json_kind, single_benchmark, text_field, text_list_field,
)
from pipeline.benchmarks.options import strip_letter_prefix
from pipeline.benchmarks.reading import Item
from pipeline.benchmarks.records import ProblemRecord

ANSWER_CHOICES_TAIL = "\nAnswer Choices:"
ANSWER_FORMATS = {"aqua": "multiple_choice", "math": "math", "gsm8k": "number", "svamp": "number"}


def looks_like(value: Any) -> bool:
    return isinstance(value, dict) and {"item_id", "question", "answer_value"} <= value.keys()


def convert(item: Item) -> ProblemRecord:
    item_id = id_field(item, "item_id")
    question = text_field(item, "question").strip()
    options = _options(item)
    if options:
        gold = choice_letter(item, field_value(item, "answer_value"), len(options), "answer_value")
        question = question.split(ANSWER_CHOICES_TAIL)[0].strip()
    else:
        gold = _gold_value(item)
    return ProblemRecord(
        external_id=item_id,
        question=question,
        gold_answer=gold,
        choices=tuple(strip_letter_prefix(option, ascii_uppercase[i]) for i, option in enumerate(options)),
        gold_rationale=text_field(item, "answer_cot", "").strip(),
        split=item.source.split,
        metadata={"benchmark": _benchmark(item_id, options, gold)},
    )


def _options(item: Item) -> list[str]:
    """AQuA items list "A)..." options; other items have none (or null)."""
    if field_value(item, "options", None) is None:
        return []
    return text_list_field(item, "options")


def _gold_value(item: Item) -> str:
    value = field_value(item, "answer_value")
    number = canonical_number(value)
    if number is not None:
        return number
    if not isinstance(value, str) or not value.strip():
        raise item.error(f"must be a number or an answer string, got {json_kind(value)}", field="answer_value")
    return value.strip()


def _benchmark(item_id: str, options: list[str], gold: str) -> str:
    """GSI ids start with the source benchmark ("svamp_12"); otherwise judge by the answer."""
    if options:
        return "aqua"
    prefix = item_id.split("_")[0].lower()
    if prefix in ("gsm8k", "svamp", "math"):
        return prefix
    return "gsm8k" if canonical_number(gold) is not None else "math"


def classify(records: list[ProblemRecord]) -> tuple[str, str]:
    benchmark = single_benchmark(records)
    return benchmark, ANSWER_FORMATS[benchmark]
