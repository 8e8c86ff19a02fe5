"""BBQ JSON Lines: context, question, three answers ``ans0..ans2`` and the gold ``label``."""

from __future__ import annotations

from typing import Any

from pipeline.benchmarks.fields import field_value, id_field, int_field, text_field
from pipeline.benchmarks.reading import Item
from pipeline.benchmarks.records import ProblemRecord

ANSWER_KEYS = ("ans0", "ans1", "ans2")


def looks_like(value: Any) -> bool:
    return isinstance(value, dict) and {"context", "question", *ANSWER_KEYS, "label"} <= value.keys()


def convert(item: Item) -> ProblemRecord:
    label = int_field(item, "label")
    if label not in (0, 1, 2):
        raise item.error(f"label must be 0, 1 or 2, got {label}", field="label")
    category = text_field(item, "category").strip()
    context = text_field(item, "context").strip()
    return ProblemRecord(
        # example_id restarts at 0 in every category file, so the category keeps ids unique.
        external_id=f"{category}-{id_field(item, 'example_id')}",
        question=f"{context}\n{text_field(item, 'question').strip()}",
        gold_answer="ABC"[label],
        choices=tuple(text_field(item, key).strip() for key in ANSWER_KEYS),
        split=item.source.split,
        task=category,
        metadata=_metadata(item),
    )


def _metadata(item: Item) -> dict[str, Any]:
    extra = field_value(item, "additional_metadata", {})
    extra = extra if isinstance(extra, dict) else {}
    return {
        "context_condition": text_field(item, "context_condition"),
        "question_polarity": text_field(item, "question_polarity"),
        "question_index": str(field_value(item, "question_index", "")),
        "unknown_option": _unknown_option(item),
        "subcategory": extra.get("subcategory", ""),
        "stereotyped_groups": extra.get("stereotyped_groups", []),
    }


def _unknown_option(item: Item) -> int | None:
    """Index of the "can't be determined" answer, which ``answer_info`` marks with the group "unknown"."""
    answer_info = field_value(item, "answer_info", {})
    if not isinstance(answer_info, dict):
        raise item.error("must be an object such as {\"ans0\": [text, group], ...}", field="answer_info")
    for index, key in enumerate(ANSWER_KEYS):
        entry = answer_info.get(key)
        if isinstance(entry, list) and len(entry) > 1 and entry[1] == "unknown":
            return index
    return None
