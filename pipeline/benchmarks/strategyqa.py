"""StrategyQA JSON: an array of ``{qid, term, description, question, answer, facts, decomposition, evidence}``."""

from __future__ import annotations

from typing import Any

from pipeline.benchmarks.fields import field_value, id_field, json_kind, text_field, text_list_field
from pipeline.benchmarks.reading import Item
from pipeline.benchmarks.records import ProblemRecord


def looks_like(value: Any) -> bool:
    return isinstance(value, dict) and {"qid", "question", "answer"} <= value.keys()


def convert(item: Item) -> ProblemRecord:
    answer = field_value(item, "answer")
    if not isinstance(answer, bool):
        raise item.error(f"must be true or false, got {json_kind(answer)}", field="answer")
    metadata = {
        "decomposition": text_list_field(item, "decomposition", []),
        "term": text_field(item, "term", ""),
        "description": text_field(item, "description", ""),
    }
    return ProblemRecord(
        external_id=id_field(item, "qid"),
        question=text_field(item, "question").strip(),
        gold_answer="true" if answer else "false",
        gold_rationale=" ".join(fact.strip() for fact in text_list_field(item, "facts", [])),
        split=item.source.split,
        metadata=metadata,
    )
