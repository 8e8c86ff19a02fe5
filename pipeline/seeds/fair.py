"""FAIR's student answers: ``*_false_round0.json`` and its _feedback / _rationale siblings, as problems and attempts.

Each record is a problem the student got wrong: ``student_wrong_pred`` is the attempt's output,
``student_wrong_final_answer`` its extracted answer. The teacher fields of the _feedback and _rationale
files are not modelled yet; they stay in the attempt's metadata so the files write back unchanged.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.fields import canonical_number, id_field, text_field, text_list_field
from pipeline.benchmarks.gsm8k import GOLD_MARK, remove_calculator_annotations
from pipeline.benchmarks.reading import Item, SourceFile
from pipeline.benchmarks.records import ProblemRecord
from pipeline.labels import FAIR_FIELDS, _fair_benchmark
from pipeline.seeds.records import (
    SeedBundle, check_unique, compose, kept_metadata, own_metadata, problem_of, problems_by_id, record_list,
)

RECORD_KEYS = (*FAIR_FIELDS, "options")  # LogiQA records list their options too
# What FAIR's infer_student_wrong.py writes when it finds no answer in the student's output.
NO_ANSWER = "absolute_wrong_final_ans"
FILE_NAME = re.compile(r"(?P<student>.+)_[^_]+_(false|feedback|rationale)_round\d+\.json")
WHOLE_NUMBER = re.compile(r"-?(0|[1-9]\d*)")


def read(source: SourceFile, data: Any, format: str) -> SeedBundle:
    items = record_list(source, data, "FAIR's JSON array of {id, question, gold_answer, student_wrong_pred, ...}")
    text_field(items[0], "gold_answer")
    benchmark = _fair_benchmark(items[0].value)
    problems: list[ProblemRecord] = []
    attempts: list[AttemptRecord] = []
    seen: dict[str, Item] = {}
    for item in items:
        problem = _problem(item, benchmark)
        check_unique(seen, problem.external_id, item, "id")
        final_answer = text_field(item, "student_wrong_final_answer")
        attempt = AttemptRecord(
            problem_external_id=problem.external_id,
            output=text_field(item, "student_wrong_pred"),
            extracted=None if final_answer == NO_ANSWER else final_answer,
            correct=False,
        )
        problems.append(problem)
        modelled = _modelled(problem, attempt, benchmark)
        attempts.append(replace(attempt, metadata=kept_metadata(item.value, modelled, RECORD_KEYS)))
    named = FILE_NAME.fullmatch(source.path.name)
    extra = {"student_model": named.group("student")} if named else {}
    return SeedBundle(format, benchmark, problems, attempts, extra)


def write(bundle: SeedBundle, format: str) -> list[dict[str, Any]]:
    """The bundle's wrong attempts, one record each; the teacher fields only when written as read."""
    own = bundle.format == format
    problems = problems_by_id(bundle.problems)
    return [
        compose(RECORD_KEYS, _modelled(problem_of(problems, attempt), attempt, bundle.benchmark),
                own_metadata(attempt, own))
        for attempt in bundle.attempts if not attempt.correct
    ]


def _problem(item: Item, benchmark: str) -> ProblemRecord:
    gold, rationale = _gold(item, text_field(item, "gold_answer"), benchmark)
    return ProblemRecord(
        external_id=id_field(item, "id"),
        question=text_field(item, "question").strip(),
        gold_answer=gold,
        choices=tuple(option.strip() for option in text_list_field(item, "options", [])),
        gold_rationale=rationale,
        metadata={"benchmark": benchmark},
    )


def _gold(item: Item, text: str, benchmark: str) -> tuple[str, str]:
    """The gold answer and rationale in Errata's form, from FAIR's gold_answer field."""
    if benchmark == "strategyqa":  # "true.\t<facts>"
        label, _, facts = text.partition("\t")
        label = label.strip().rstrip(".").lower()
        if label not in ("true", "false"):
            raise item.error(f"must start with 'true.' or 'false.' and a tab, got {text[:40]!r}", field="gold_answer")
        return label, facts.strip()
    if benchmark == "gsm8k":  # GSM8K's whole solution, ending "#### N"
        worked, _, final = text.rpartition(GOLD_MARK)
        number = canonical_number(final)
        if number is None:
            raise item.error("has no '#### <number>' line with the gold answer", field="gold_answer")
        return number, remove_calculator_annotations(worked).strip()
    if benchmark == "svamp":
        number = canonical_number(text)
        if number is None:
            raise item.error(f"must be a number, got {text[:40]!r}", field="gold_answer")
        return number, ""
    return text.strip(), ""


def _gold_text(problem: ProblemRecord, benchmark: str) -> str:
    if benchmark == "strategyqa":
        return f"{problem.gold_answer}.\t{problem.gold_rationale}"
    if benchmark == "gsm8k":
        return f"{problem.gold_rationale}\n{GOLD_MARK} {problem.gold_answer}"
    return problem.gold_answer


def _modelled(problem: ProblemRecord, attempt: AttemptRecord, benchmark: str) -> dict[str, Any]:
    """The record's fields as Errata's problem and attempt give them."""
    external_id = problem.external_id
    values: dict[str, Any] = {
        "id": int(external_id) if WHOLE_NUMBER.fullmatch(external_id) else external_id,
        "question": problem.question,
        "gold_answer": _gold_text(problem, benchmark),
        "student_wrong_pred": attempt.output,
        "student_wrong_final_answer": NO_ANSWER if attempt.extracted is None else attempt.extracted,
    }
    if problem.choices:
        values["options"] = list(problem.choices)
    return values
