"""SALAM's student answers: mistake/correct collections and status.json, as problems and attempts, and back.

A record is one problem and one attempt: ``response/prompt_str`` is the attempt's prompt,
``response/output_ori`` its raw output, ``response/output`` (what SALAM scored) its extracted answer. A
collection's name gives the label (mistake: wrong, correct: right); status.json gives it per record in
``train_score`` / ``test_score``, and its ``train_mistake`` / ``train_correct`` are rebuilt from those.
"""

from __future__ import annotations

from dataclasses import replace
from string import ascii_uppercase
from typing import Any

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks import salam
from pipeline.benchmarks.fields import id_field, int_field, json_kind, text_field
from pipeline.benchmarks.options import OPTIONS_HEADER
from pipeline.benchmarks.reading import Item, SourceFile
from pipeline.benchmarks.records import ProblemRecord
from pipeline.labels import SALAM_COLLECTION_FIELDS
from pipeline.seeds.records import (
    SeedBundle, check_unique, compose, kept_metadata, own_metadata, problem_of, problems_by_id,
    record_list,
)

PROMPT, TARGET, OUTPUT_ORI, OUTPUT = SALAM_COLLECTION_FIELDS[:4]
RECORD_KEYS = SALAM_COLLECTION_FIELDS
TEST_RECORD_KEYS = SALAM_COLLECTION_FIELDS[:4]  # status.json's test_set records carry only these
ENTRY_KEYS = ("train_set", "test_set", "train_score", "test_score", "train_target_option", "test_target_option",
              "train_mistake", "train_correct")
SETS = (("train_set", "train"), ("test_set", "test"))
STATUS_TASK = "status_task"  # attempt metadata: the status.json key the record sits under ("Age_zero_shot")
DEFAULT_TASK_SUFFIX = "_zero_shot"
DEFAULTED = ("task", "task_idx", "index")  # not modelled: kept when read, defaults when writing Errata's attempts
Pair = tuple[ProblemRecord, AttemptRecord]


# --- reading ---------------------------------------------------------------------------------------

def read_collection(source: SourceFile, data: Any, format: str) -> SeedBundle:
    labelled_correct = format == "salam_correct"
    problems: list[ProblemRecord] = []
    attempts: list[AttemptRecord] = []
    seen: dict[str, Item] = {}
    for item in record_list(source, data, "a SALAM collection: a JSON array of records"):
        id_field(item, "task_idx")
        int_field(item, "index")
        problem = _problem(salam.convert_collection(item), text_field(item, "target_option"))
        check_unique(seen, problem.external_id, item, "task_idx")
        problems.append(problem)
        attempts.append(_attempt(item, problem, labelled_correct, RECORD_KEYS))
    return SeedBundle(format, salam.classify(problems)[0], problems, attempts)


def read_status(source: SourceFile, data: Any, format: str) -> SeedBundle:
    if not salam.looks_like_status(data):
        raise source.error('expected SALAM\'s status.json: {task: {"train_set": [...], "test_set": [...], ...}}')
    pairs: list[Pair] = []
    entries: dict[str, Any] = {}
    seen: dict[str, Item] = {}
    for task, entry in data.items():
        task_pairs = [pair for set_name, split in SETS
                      for pair in _status_set(source, task, entry, set_name, split, seen)]
        kept = kept_metadata(entry, _task_entry(task_pairs, own=True, counters={}), ENTRY_KEYS)
        if kept:
            entries[task] = kept
        pairs.extend(task_pairs)
    if not pairs:
        raise source.error("no records in any task's train_set or test_set")
    problems = [problem for problem, _ in pairs]
    extra: dict[str, Any] = {"tasks": list(data)}
    if entries:
        extra["task_entries"] = entries
    return SeedBundle(format, salam.classify(problems)[0], problems, [attempt for _, attempt in pairs], extra)


def _status_set(source: SourceFile, task: str, entry: dict[str, Any], set_name: str, split: str,
                seen: dict[str, Item]) -> list[Pair]:
    rows = _status_list(source, task, entry, set_name)
    scores = _status_list(source, task, entry, f"{split}_score", len(rows))
    targets = _status_list(source, task, entry, f"{split}_target_option", len(rows))
    pairs = []
    for number, (row, score, target) in enumerate(zip(rows, scores, targets), start=1):
        item = Item(row, source, number, record=number, context=f"{task} {set_name}")
        if not isinstance(row, dict):
            raise item.error(f"expected a JSON object, got {json_kind(row)}")
        if isinstance(score, bool) or score not in (0, 1):
            raise item.error(f"its score is {score!r}, not 0 or 1", field=f"{split}_score")
        if not isinstance(target, str):
            raise item.error(f"its target option is {json_kind(target)}, not a string", field=f"{split}_target_option")
        if split == "train" and "index" in row:
            int_field(item, "index")
        problem = _problem(salam.convert_status(item), text_field(item, "target_option", target))
        check_unique(seen, problem.external_id, item, "task_idx")
        attempt = _attempt(item, problem, score == 1, RECORD_KEYS if split == "train" else TEST_RECORD_KEYS)
        pairs.append((problem, replace(attempt, metadata={STATUS_TASK: task, **attempt.metadata})))
    return pairs


def _status_list(source: SourceFile, task: str, entry: dict[str, Any], key: str, length: int | None = None) -> list:
    value = entry.get(key)
    if not isinstance(value, list):
        raise source.error(f"{task}: must be a list, got {json_kind(value) if key in entry else 'nothing'}", field=key)
    if length is not None and len(value) != length:
        set_name = key.split("_")[0] + "_set"
        raise source.error(f"{task}: has {len(value)} entries for the {length} records of {set_name}", field=key)
    return value


def _problem(problem: ProblemRecord, target_option: str) -> ProblemRecord:
    # The benchmark loader also keeps the student's output on the problem; here the attempt carries it.
    metadata = {key: value for key, value in problem.metadata.items() if key != "student_output"}
    return replace(problem, metadata={**metadata, "target_option": target_option})


def _attempt(item: Item, problem: ProblemRecord, correct: bool, keys: tuple[str, ...]) -> AttemptRecord:
    attempt = AttemptRecord(
        problem_external_id=problem.external_id,
        output=text_field(item, OUTPUT_ORI),
        extracted=text_field(item, OUTPUT),
        correct=correct,
        prompt=text_field(item, PROMPT),
    )
    return replace(attempt, metadata=kept_metadata(item.value, _modelled(problem, attempt), keys, DEFAULTED))


# --- writing ---------------------------------------------------------------------------------------

def write_collection(bundle: SeedBundle, format: str) -> list[dict[str, Any]]:
    """The mistakes (salam_mistakes) or right answers (salam_correct) of the bundle, in its order."""
    own = bundle.format == format
    wanted = format == "salam_correct"
    problems = problems_by_id(bundle.problems)
    records: list[dict[str, Any]] = []
    for attempt in bundle.attempts:
        if attempt.correct == wanted:
            records.append(_record(problem_of(problems, attempt), attempt, own, RECORD_KEYS, len(records)))
    return records


def write_status(bundle: SeedBundle, format: str) -> dict[str, Any]:
    """Every attempt under its task; problems with split "test" go to test_set, the others to train_set."""
    own = bundle.format == format
    problems = problems_by_id(bundle.problems)
    groups: dict[str, list[Pair]] = {task: [] for task in (bundle.extra.get("tasks", []) if own else [])}
    for attempt in bundle.attempts:
        problem = problem_of(problems, attempt)
        task = attempt.metadata.get(STATUS_TASK) or problem.task + DEFAULT_TASK_SUFFIX
        groups.setdefault(task, []).append((problem, attempt))
    kept = bundle.extra.get("task_entries", {}) if own else {}
    counters: dict[bool, int] = {}
    return {task: compose(ENTRY_KEYS, _task_entry(pairs, own, counters), kept.get(task, {}))
            for task, pairs in groups.items()}


def _task_entry(pairs: list[Pair], own: bool, counters: dict[bool, int]) -> dict[str, Any]:
    train = [(problem, attempt) for problem, attempt in pairs if problem.split != "test"]
    test = [(problem, attempt) for problem, attempt in pairs if problem.split == "test"]
    train_records = []
    for problem, attempt in train:
        # SALAM numbers a train record by its place in the mistake or correct collection of all tasks.
        index = counters.get(attempt.correct, 0)
        counters[attempt.correct] = index + 1
        train_records.append(_record(problem, attempt, own, RECORD_KEYS, index))
    return {
        "train_set": train_records,
        "test_set": [_record(problem, attempt, own, TEST_RECORD_KEYS, 0) for problem, attempt in test],
        "train_score": [int(attempt.correct) for _, attempt in train],
        "test_score": [int(attempt.correct) for _, attempt in test],
        "train_target_option": [target_option(problem) for problem, _ in train],
        "test_target_option": [target_option(problem) for problem, _ in test],
        "train_mistake": [record for record, (_, attempt) in zip(train_records, train) if not attempt.correct],
        "train_correct": [record for record, (_, attempt) in zip(train_records, train) if attempt.correct],
    }


def _record(problem: ProblemRecord, attempt: AttemptRecord, own: bool, keys: tuple[str, ...],
            index: int) -> dict[str, Any]:
    defaults = {
        "task": problem.task + DEFAULT_TASK_SUFFIX,
        "task_idx": task_idx(problem),
        "index": index,
    }
    return compose(keys, {**defaults, **_modelled(problem, attempt)}, own_metadata(attempt, own))


def _modelled(problem: ProblemRecord, attempt: AttemptRecord) -> dict[str, Any]:
    """The record's fields as Errata's problem and attempt give them."""
    return {
        PROMPT: attempt.prompt or prompt_text(problem),
        TARGET: f"({problem.gold_answer})" if problem.choices else problem.gold_answer,
        OUTPUT_ORI: attempt.output,
        OUTPUT: attempt.output if attempt.extracted is None else attempt.extracted,
        "target_option": target_option(problem),
    }


def task_idx(problem: ProblemRecord) -> int | str:
    """The id within its task, as SALAM's ids are built ("date_understanding-5" -> 5, "Age-test-3" -> "test-3")."""
    prefix = f"{problem.task}-"
    local = problem.external_id[len(prefix):] if problem.external_id.startswith(prefix) else problem.external_id
    return int(local) if local.isdecimal() else local


def prompt_text(problem: ProblemRecord) -> str:
    """SALAM's zero-shot prompt: the question, then "Options:" and one "(A) text" line per choice."""
    if not problem.choices:
        return problem.question
    lines = [f"({letter}) {choice}" for letter, choice in zip(ascii_uppercase, problem.choices)]
    return problem.question + OPTIONS_HEADER + "\n".join(lines)


def target_option(problem: ProblemRecord) -> str:
    """The gold as SALAM's rule compares it, "(b) 02/16/2009": the seed's own when read, else rendered."""
    if "target_option" in problem.metadata:
        return problem.metadata["target_option"]
    if not problem.choices:
        return problem.gold_answer.lower()
    letter = problem.gold_answer
    return f"({letter}) {problem.choices[ascii_uppercase.index(letter)]}".lower()

