"""GSI results: problems ``{item_id, question, answer_value[, answer_cot, options]}`` with the student's predictions.

A record carries ``pred`` (the output), ``pred_value`` (the extracted answer) and ``correct_pred`` (GSI's
verdict), either one of each or, for several samples of one problem, three lists of one length.
"""

from __future__ import annotations

import json
from dataclasses import replace
from string import ascii_uppercase
from typing import Any

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks import gsi
from pipeline.benchmarks.fields import json_kind
from pipeline.benchmarks.reading import Item, SourceFile
from pipeline.benchmarks.records import ProblemRecord
from pipeline.seeds.records import (
    SeedBundle, check_unique, compose, kept_metadata, own_metadata, problem_of, problems_by_id, record_list,
)

PREDICTION_FIELDS = ("pred", "pred_value", "correct_pred")
RECORD_KEYS = ("item_id", "question", "answer_cot", "options", "answer_value", *PREDICTION_FIELDS)
SAMPLES_AS_LISTS = "samples_as_lists"


def read(source: SourceFile, data: Any, format: str) -> SeedBundle:
    problems: list[ProblemRecord] = []
    attempts: list[AttemptRecord] = []
    seen: dict[str, Item] = {}
    as_lists: bool | None = None
    for item in record_list(source, data, "GSI's JSON array of {item_id, question, answer_value, pred, ...}"):
        _require_predictions(item)
        record_lists = isinstance(item.value["pred"], list)
        if as_lists is not None and record_lists != as_lists:
            shape = "a list" if record_lists else "one prediction"
            raise item.error(f"holds {shape}, unlike the records before it", field="pred")
        as_lists = record_lists
        problem = gsi.convert(item)
        check_unique(seen, problem.external_id, item, "item_id")
        samples = [
            AttemptRecord(problem.external_id, output, extracted, correct, sample_index=index)
            for index, (output, extracted, correct) in enumerate(_samples(item))
        ]
        kept = kept_metadata(item.value, _modelled(problem, samples, as_lists), RECORD_KEYS)
        problems.append(problem)
        attempts.extend([replace(samples[0], metadata=kept), *samples[1:]])
    return SeedBundle(format, gsi.classify(problems)[0], problems, attempts, {SAMPLES_AS_LISTS: bool(as_lists)})


def write(bundle: SeedBundle, format: str) -> list[dict[str, Any]]:
    """One record per problem that has attempts, its samples as lists when the seed had lists or there are several."""
    own = bundle.format == format
    problems = problems_by_id(bundle.problems)
    groups: dict[str, list[AttemptRecord]] = {}
    for attempt in bundle.attempts:
        problem_of(problems, attempt)
        groups.setdefault(attempt.problem_external_id, []).append(attempt)
    as_lists = (own and bundle.extra.get(SAMPLES_AS_LISTS, False)) or any(len(group) > 1 for group in groups.values())
    records = []
    for external_id, group in groups.items():
        group.sort(key=lambda attempt: (attempt.round, attempt.sample_index))
        values = _modelled(problems[external_id], group, as_lists)
        records.append(compose(RECORD_KEYS, values, own_metadata(group[0], own)))
    return records


def _require_predictions(item: Item) -> None:
    missing = [key for key in PREDICTION_FIELDS if key not in item.value]
    if missing:
        raise item.error(
            "missing: a GSI results record has the student's pred, pred_value and correct_pred beside the problem; "
            "a GSI problem file without them (data/test, data/inference) is a dataset, not results",
            field=missing[0],
        )


def _samples(item: Item) -> list[tuple[str, str | None, bool]]:
    """(output, extracted, correct) of each sample: one, or one per entry of the three lists."""
    values = [item.value[key] for key in PREDICTION_FIELDS]
    if isinstance(values[0], list):
        for key, value in zip(PREDICTION_FIELDS[1:], values[1:]):
            if not isinstance(value, list):
                raise item.error(f"must be a list like pred, got {json_kind(value)}", field=key)
            if len(value) != len(values[0]):
                raise item.error(f"has {len(value)} entries, pred has {len(values[0])}", field=key)
        if not values[0]:
            raise item.error("holds no predictions", field="pred")
        rows = list(zip(*values))
    else:
        rows = [tuple(values)]
    return [(_output(item, pred), _extracted(item, value), _correct(item, verdict)) for pred, value, verdict in rows]


def _output(item: Item, pred: Any) -> str:
    if not isinstance(pred, str):
        raise item.error(f"must be the student's output as a string, got {json_kind(pred)}", field="pred")
    return pred


def _extracted(item: Item, value: Any) -> str | None:
    """GSI's extracted answer as text: a number as JSON writes it, null as no answer."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):  # bool included: json writes true/false
        return json.dumps(value)
    raise item.error(f"must be a string, a number or null, got {json_kind(value)}", field="pred_value")


def _correct(item: Item, verdict: Any) -> bool:
    if isinstance(verdict, bool) or (isinstance(verdict, int) and verdict in (0, 1)):  # 1/0 kept as written
        return bool(verdict)
    raise item.error(f"must be true or false, got {json_kind(verdict)}", field="correct_pred")


def _modelled(problem: ProblemRecord, samples: list[AttemptRecord], as_lists: bool) -> dict[str, Any]:
    """The record's fields as Errata's problem and attempts give them."""
    values: dict[str, Any] = {"item_id": problem.external_id, "question": problem.question}
    if problem.gold_rationale:
        values["answer_cot"] = problem.gold_rationale
    if problem.choices:
        values["options"] = [f"{letter}){choice}" for letter, choice in zip(ascii_uppercase, problem.choices)]
    values["answer_value"] = problem.gold_answer
    predictions = {
        "pred": [sample.output for sample in samples],
        "pred_value": [sample.extracted for sample in samples],
        "correct_pred": [sample.correct for sample in samples],
    }
    values.update(predictions if as_lists else {key: entries[0] for key, entries in predictions.items()})
    return values

