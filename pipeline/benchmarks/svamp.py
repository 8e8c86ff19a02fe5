"""SVAMP JSON: an array of ``{ID, Body, Question, Equation, Answer, Type}``."""

from __future__ import annotations

from typing import Any

from pipeline.benchmarks.fields import id_field, number_field, text_field
from pipeline.benchmarks.reading import Item
from pipeline.benchmarks.records import ProblemRecord


def looks_like(value: Any) -> bool:
    return isinstance(value, dict) and {"Body", "Question", "Answer"} <= value.keys()


def convert(item: Item) -> ProblemRecord:
    body = text_field(item, "Body").strip()
    question = text_field(item, "Question").strip()
    metadata = {
        "equation": text_field(item, "Equation", "").strip(),
        "type": text_field(item, "Type", "").strip(),
    }
    return ProblemRecord(
        external_id=id_field(item, "ID"),
        question=f"{body} {question}" if body else question,
        gold_answer=number_field(item, "Answer"),
        split=item.source.split,
        metadata={key: value for key, value in metadata.items() if value},
    )
