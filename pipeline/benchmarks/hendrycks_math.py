"""Hendrycks MATH: ``{problem, level, type, solution}`` per file (a folder tree), as a JSON array, or JSON Lines."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from pipeline.benchmarks.fields import field_value, id_field, text_field
from pipeline.benchmarks.reading import Item
from pipeline.benchmarks.records import ProblemRecord
from pipeline.latex import last_boxed


def looks_like(value: Any) -> bool:
    return isinstance(value, dict) and {"problem", "solution"} <= value.keys()


def convert(item: Item) -> ProblemRecord:
    solution = text_field(item, "solution")
    gold = last_boxed(solution)
    if gold is None or not gold.strip():
        raise item.error("has no \\boxed{...} final answer", field="solution")
    level = text_field(item, "level", "").strip()
    return ProblemRecord(
        external_id=_external_id(item),
        question=text_field(item, "problem").strip(),
        gold_answer=gold.strip(),
        gold_rationale=solution.strip(),
        split=item.source.split,
        task=text_field(item, "type", "").strip(),
        metadata={"level": level} if level else {},
    )


def _external_id(item: Item) -> str:
    """A file per problem is named by its path ("algebra/12"); records in a list by number."""
    if field_value(item, "unique_id", None) is not None:
        return id_field(item, "unique_id")
    if item.line is None and item.record is None:
        return str(PurePosixPath(item.source.label).with_suffix(""))
    return f"{item.source.stem}-{item.index}"
