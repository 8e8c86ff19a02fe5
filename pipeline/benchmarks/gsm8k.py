"""GSM8K JSON Lines: ``{question, answer}`` where the answer's last line is ``#### <number>``."""

from __future__ import annotations

import re
from typing import Any

from pipeline.benchmarks.fields import canonical_number, text_field
from pipeline.benchmarks.reading import Item
from pipeline.benchmarks.records import ProblemRecord

CALCULATOR_ANNOTATION = re.compile(r"<<[^>]*>>")
GOLD_MARK = "####"


def looks_like(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("question"), str) and isinstance(value.get("answer"), str)


def convert(item: Item) -> ProblemRecord:
    question = text_field(item, "question")
    answer = text_field(item, "answer")
    worked, mark, final = answer.rpartition(GOLD_MARK)
    if not mark:
        raise item.error("has no '#### <number>' line with the gold answer", field="answer")
    gold = canonical_number(final)
    if gold is None:
        raise item.error(f"the gold answer after '####' is not a number: {final.strip()!r}", field="answer")
    return ProblemRecord(
        external_id=f"{item.source.stem}-{item.index}",
        question=question.strip(),
        gold_answer=gold,
        gold_rationale=remove_calculator_annotations(worked).strip(),
        split=item.source.split,
    )


def remove_calculator_annotations(text: str) -> str:
    """"2/2=<<2/2=1>>1 bolt" -> "2/2=1 bolt"."""
    return CALCULATOR_ANNOTATION.sub("", text)
