"""BIG-Bench Hard task files: ``{"canary", "examples": [{input, target}]}``, the task named by the file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from string import ascii_uppercase
from typing import Any

from pipeline.benchmarks.fields import canonical_number, json_kind, text_field
from pipeline.benchmarks.options import parenthesised_letter, split_lettered_options
from pipeline.benchmarks.reading import Item, SourceFile, json_items
from pipeline.benchmarks.records import ProblemRecord

TASKS = frozenset({
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "dyck_languages",
    "formal_fallacies", "geometric_shapes", "hyperbaton", "logical_deduction_five_objects",
    "logical_deduction_seven_objects", "logical_deduction_three_objects", "movie_recommendation",
    "multistep_arithmetic_two", "navigate", "object_counting", "penguins_in_a_table",
    "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
    "sports_understanding", "temporal_sequences", "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects", "web_of_lies",
    "word_sorting",
})


def looks_like(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("examples"), list) and (
        "canary" in value or _first_is_example(value["examples"])
    )


def _first_is_example(examples: list[Any]) -> bool:
    return bool(examples) and isinstance(examples[0], dict) and {"input", "target"} <= examples[0].keys()


def items(source: SourceFile) -> Iterator[Item]:
    """Each example of the task object, numbered as records from 1."""
    documents = json_items(source)
    document = next(documents)
    if not isinstance(document.value, dict) or "examples" not in document.value:
        raise document.error('expected a BBH task object {"examples": [{"input": ..., "target": ...}, ...]}')
    if next(documents, None) is not None:
        raise source.error("expected one BBH task object per file, found several records")
    examples = document.value["examples"]
    if not isinstance(examples, list):
        raise source.error(f"must be a list, got {json_kind(examples)}", field="examples")
    for number, example in enumerate(examples, start=1):
        yield Item(example, source, number, record=number)


def convert(item: Item) -> ProblemRecord:
    text = text_field(item, "input")
    target = text_field(item, "target").strip()
    task = item.source.stem
    record = ProblemRecord(
        external_id=f"{task}-{item.index}",
        question=text.strip(),
        gold_answer=target,
        split=item.source.split,
        task=task,
    )
    return with_lettered_options(item, record, text, target)


def with_lettered_options(
    item: Item, record: ProblemRecord, text: str, target: str, target_field: str = "target",
) -> ProblemRecord:
    """Letter options become choices; free-form targets keep the full input ("- Yes\\n- No" included)."""
    parsed = split_lettered_options(text)
    letter = parenthesised_letter(target)
    if parsed is None:
        if letter is not None:
            message = f"target {target!r} is an option letter but the input has no '(A) ...' options"
            raise item.error(message, field=target_field)
        return record
    question, choices = parsed
    if letter is None and target in choices:
        letter = ascii_uppercase[choices.index(target)]
    if letter is None:
        # Upstream BBH has a few targets that name no single option ("Monsters, Inc" split in two).
        return replace(record, metadata={**record.metadata, "target_not_an_option": True})
    if ord(letter) - ord("A") >= len(choices):
        message = f"target {target!r} is not one of the options (A)-({ascii_uppercase[len(choices) - 1]})"
        raise item.error(message, field=target_field)
    return replace(record, question=question, choices=choices, gold_answer=letter)


def classify(records: list[ProblemRecord]) -> tuple[str, str]:
    """Multiple choice when every task has options, numbers when every target is one, else text."""
    if all(record.choices for record in records):
        return "bbh", "multiple_choice"
    if all(canonical_number(record.gold_answer) is not None for record in records):
        return "bbh", "number"
    return "bbh", "text"
