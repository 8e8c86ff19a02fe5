"""LEMA test files: ``{prompt, answer, candidates}`` (CSQA, AQuA) and ``{prompt, completion}`` (GSM8K, MATH)."""

from __future__ import annotations

import re
from string import ascii_uppercase
from typing import Any

from pipeline.benchmarks.fields import (
    canonical_number, choice_letter, single_benchmark, text_field, text_list_field,
)
from pipeline.benchmarks.options import has_letter_prefixes, strip_letter_prefix
from pipeline.benchmarks.reading import Item
from pipeline.benchmarks.records import ProblemRecord

QUESTION_IN_PROMPT = re.compile(
    r"Question:\s*(.*?)\s*(?:\nCandidate Answers:|\nAnswer Choices:|\nAnswer:|$)", re.DOTALL,
)
ANSWER_SENTENCE = "The answer is"


def looks_like_choice(value: Any) -> bool:
    return isinstance(value, dict) and {"prompt", "answer", "candidates"} <= value.keys()


def looks_like_cot(value: Any) -> bool:
    return isinstance(value, dict) and {"prompt", "completion"} <= value.keys()


def question_from_prompt(prompt: str) -> str:
    """The problem inside LEMA's instruction prompt ("...Question: <q>\\nAnswer: Let's think...")."""
    match = QUESTION_IN_PROMPT.search(prompt)
    return match.group(1).strip() if match and match.group(1).strip() else prompt.strip()


def convert_choice(item: Item) -> ProblemRecord:
    prompt = text_field(item, "prompt")
    answer = text_field(item, "answer").strip()
    candidates = text_list_field(item, "candidates")
    if not 2 <= len(candidates) <= len(ascii_uppercase):
        raise item.error(f"must hold 2 to 26 candidates, got {len(candidates)}", field="candidates")
    benchmark = "aqua" if _is_aqua(answer, candidates) else "csqa"
    if benchmark == "aqua":
        letter = choice_letter(item, answer, len(candidates), "answer")
        choices = tuple(strip_letter_prefix(option, ascii_uppercase[i]) for i, option in enumerate(candidates))
    else:
        letter = _letter_of_candidate(item, answer, candidates)
        choices = tuple(candidate.strip() for candidate in candidates)
    return ProblemRecord(
        external_id=f"{item.source.stem}-{item.index}",
        question=question_from_prompt(prompt),
        gold_answer=letter,
        choices=choices,
        split=item.source.split,
        metadata={"prompt": prompt, "benchmark": benchmark},
    )


def _is_aqua(answer: str, candidates: list[str]) -> bool:
    """AQuA gives the gold as a letter and writes candidates "A)...", CommonsenseQA gives the text."""
    return len(answer) == 1 and answer.upper() in ascii_uppercase and has_letter_prefixes(candidates)


def _letter_of_candidate(item: Item, answer: str, candidates: list[str]) -> str:
    stripped = [candidate.strip() for candidate in candidates]
    if answer not in stripped:
        raise item.error(f"{answer!r} is not one of the candidates", field="answer")
    return ascii_uppercase[stripped.index(answer)]


def convert_cot(item: Item) -> ProblemRecord:
    prompt = text_field(item, "prompt")
    completion = text_field(item, "completion")
    _, sentence, final = completion.rpartition(ANSWER_SENTENCE)
    gold = final.strip().rstrip(".").strip()
    if not sentence or not gold:
        raise item.error(f"has no '{ANSWER_SENTENCE} ...' sentence with the gold answer", field="completion")
    return ProblemRecord(
        external_id=f"{item.source.stem}-{item.index}",
        question=question_from_prompt(prompt),
        gold_answer=canonical_number(gold) or gold,
        gold_rationale=completion.strip(),
        split=item.source.split,
        metadata={"prompt": prompt},
    )


def classify_choice(records: list[ProblemRecord]) -> tuple[str, str]:
    return single_benchmark(records), "multiple_choice"


def classify_cot(records: list[ProblemRecord]) -> tuple[str, str]:
    """GSM8K when every gold answer is a number, else MATH (LEMA's math_test.jsonl)."""
    if all(canonical_number(record.gold_answer) is not None for record in records):
        return "gsm8k", "number"
    return "math", "math"
