"""Read the seed files that carry their own right/wrong labels and re-score them with each seed's rule."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.benchmarks.records import DatasetFormatError
from pipeline.scoring import score

NOT_LABELLED = "not a seed file with labels"

SALAM_COLLECTION_FIELDS = (
    "response/prompt_str", "response/target_str", "response/output_ori", "response/output",
    "task", "task_idx", "target_option", "index",
)
SALAM_STATUS_FIELDS = ("train_set", "test_set", "train_score", "test_score",
                       "train_target_option", "test_target_option")
FAIR_FIELDS = ("id", "question", "gold_answer", "student_wrong_pred", "student_wrong_final_answer")

# SALAM scored `response/output` (output_ori is the raw generation; the two are equal in the flan_t5 files).
SALAM_OUTPUT_FIELD = "response/output"
# FAIR scored the raw generation, which it did not keep: `student_wrong_pred` is that generation cut
# right after the number it extracted, `student_wrong_final_answer` is the extraction itself.
FAIR_OUTPUT_FIELDS = ("student_wrong_pred", "student_wrong_final_answer")

FORMATS = ("salam_mistake_collection", "salam_correct_collection", "salam_status", "fair_student_wrong")
FAIR_SCORERS = {"gsm8k": "fair_numeric", "svamp": "fair_numeric",
                "strategyqa": "strategyqa_bool", "logiqa": "logiqa_option"}
MAX_EXAMPLES = 10
BBQ_CATEGORIES = frozenset({
    "Age", "Disability_status", "Gender_identity", "Nationality", "Physical_appearance", "Race_ethnicity",
    "Race_x_SES", "Race_x_gender", "Religion", "SES", "Sexual_orientation",
})
_SALAM_OPTION_LINE = re.compile(r"^\([A-Z]\)\s*(.*)$", re.MULTILINE)  # "(B) 02/16/2009" under "Options:"


@dataclass(frozen=True)
class LabelledAnswer:
    """One student answer with the seed's own verdict; `outputs` maps field name to text, the scored field first."""

    ref: dict[str, Any]  # where the answer sits in the file: index, task, split, id...
    gold: str  # in the form the seed's rule compared against (SALAM: the whole option, "(b) 02/16/2009")
    outputs: dict[str, str]
    labelled_correct: bool
    choices: tuple[str, ...] = ()
    benchmark_gold: str | None = None  # the benchmark's own target ("(B)") for Errata's other scorers

    def gold_for(self, scorer: str, seed_scorer: str) -> str:
        """The gold in the form `scorer` expects: the seed's own form for the seed's rule."""
        if scorer == seed_scorer or self.benchmark_gold is None:
            return self.gold
        return self.benchmark_gold


@dataclass
class LabelledSeedFile:
    """A seed file read into answers, with the benchmark, the seed's scorer and where its labels come from."""

    format: str
    benchmark: str
    scorer: str
    labels_from: str
    answers: list[LabelledAnswer]


def check_labels(path: str | Path, *, seed_format: str | None = None, scorer: str | None = None,
                 max_examples: int = MAX_EXAMPLES) -> dict[str, Any]:
    """Re-score every labelled answer in `path` and count where the seed's label and the rule agree.

    `scorer` replaces the seed's own rule, to see which labels Errata's default would change.
    """
    seed = read_labelled_seed_file(path, seed_format=seed_format)
    scorer_name = scorer or seed.scorer
    fields = list(seed.answers[0].outputs) if seed.answers else []
    tallies = {field: {"agree": 0, "disagree": 0} for field in fields}
    flips = {"labelled_wrong_rescored_right": 0, "labelled_right_rescored_wrong": 0}
    examples: list[dict[str, Any]] = []
    for answer in seed.answers:
        for field, output in answer.outputs.items():
            gold = answer.gold_for(scorer_name, seed.scorer)
            result = score(scorer_name, output, gold, answer.choices)
            agrees = result.correct == answer.labelled_correct
            tallies[field]["agree" if agrees else "disagree"] += 1
            if agrees:
                continue
            if field == fields[0]:
                flips["labelled_wrong_rescored_right" if result.correct else "labelled_right_rescored_wrong"] += 1
            examples.append(_example(answer, gold, field, output, result.extracted, result.correct))
    return _report(path, seed, scorer_name, tallies, flips, _primary_field_first(examples, fields, max_examples))


def read_labelled_seed_file(path: str | Path, *, seed_format: str | None = None) -> LabelledSeedFile:
    """Load a seed file, recognise its shape (or trust `seed_format`) and return its labelled answers."""
    path = Path(path)
    data = _load_json(path)
    seed_format = seed_format or detect_format(path, data)
    if seed_format in ("salam_mistake_collection", "salam_correct_collection"):
        return _read_salam_collection(path, data, labelled_correct=seed_format == "salam_correct_collection")
    if seed_format == "salam_status":
        return _read_salam_status(path, data)
    if seed_format == "fair_student_wrong":
        return _read_fair_student_wrong(path, data)
    raise ValueError(f"unknown label format {seed_format!r}; expected one of {', '.join(FORMATS)}")


def detect_format(path: Path, data: Any) -> str:
    """Name the labelled-seed format of already-parsed JSON; SALAM collections need the file name too."""
    if isinstance(data, dict) and data and all(
            isinstance(task, dict) and "train_set" in task and "train_score" in task for task in data.values()):
        return "salam_status"
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise _not_labelled(path, "expected a SALAM status.json, a SALAM collection or a FAIR *_round0.json")
    keys = set(data[0])
    if set(FAIR_FIELDS) <= keys:
        return "fair_student_wrong"
    if set(SALAM_COLLECTION_FIELDS) <= keys:
        return _salam_collection_format(path)
    raise _not_labelled(path, f"first record has fields {sorted(keys)}, which match no labelled seed format")


def _salam_collection_format(path: Path) -> str:
    # A collection's records do not say whether they are mistakes or corrects; SALAM's file name does.
    if path.name.startswith("mistake_"):
        return "salam_mistake_collection"
    if path.name.startswith("correct_"):
        return "salam_correct_collection"
    raise _not_labelled(path, "a SALAM collection whose name starts with neither 'mistake_' nor 'correct_'; "
                              "pass --format salam_mistake_collection or salam_correct_collection")


def _read_salam_collection(path: Path, data: Any, *, labelled_correct: bool) -> LabelledSeedFile:
    records = _list_of_records(path, data, SALAM_COLLECTION_FIELDS)
    answers = [
        LabelledAnswer(
            ref={"index": record["index"], "task": record["task"], "task_idx": record["task_idx"]},
            gold=_text(path, position, record, "target_option"),
            outputs={SALAM_OUTPUT_FIELD: _text(path, position, record, SALAM_OUTPUT_FIELD)},
            labelled_correct=labelled_correct,
            choices=salam_choices(_text(path, position, record, "response/prompt_str")),
            benchmark_gold=_text(path, position, record, "response/target_str"),
        )
        for position, record in enumerate(records)
    ]
    kind = "correct" if labelled_correct else "mistake"
    return LabelledSeedFile(f"salam_{kind}_collection", _salam_benchmark(records), "salam_mc",
                            f"file name: every record of a {kind} collection is labelled "
                            f"{'right' if labelled_correct else 'wrong'}", answers)


def _read_salam_status(path: Path, data: Any) -> LabelledSeedFile:
    if not isinstance(data, dict):
        raise _not_labelled(path, "a SALAM status.json is a JSON object of task -> splits")
    answers = [answer for task, splits in data.items() for split in ("train", "test")
               for answer in _salam_status_split(path, task, splits, split)]
    benchmark = _salam_benchmark([{"task": task} for task in data])
    return LabelledSeedFile("salam_status", benchmark, "salam_mc",
                            "<split>_score lists (1 right, 0 wrong), gold from <split>_target_option", answers)


def _salam_status_split(path: Path, task: str, splits: Any, split: str) -> Iterator[LabelledAnswer]:
    for field in SALAM_STATUS_FIELDS:
        if not isinstance(splits, dict) or not isinstance(splits.get(field), list):
            raise DatasetFormatError(f"task {task!r} has no list '{field}'", path=str(path), field=field)
    records, scores = splits[f"{split}_set"], splits[f"{split}_score"]
    targets = splits[f"{split}_target_option"]
    if not len(records) == len(scores) == len(targets):
        raise DatasetFormatError(f"task {task!r}: {split}_set, {split}_score and {split}_target_option "
                                 f"have different lengths", path=str(path))
    for position, (record, label, target) in enumerate(zip(records, scores, targets)):
        if not isinstance(record, dict):
            raise DatasetFormatError(f"task {task!r} {split}_set[{position}] is not a JSON object", path=str(path))
        if label not in (0, 1):
            raise DatasetFormatError(f"task {task!r} {split}_score[{position}] is {label!r}, not 0 or 1",
                                     path=str(path), field=f"{split}_score")
        yield LabelledAnswer(
            ref={"task": task, "split": split, "position": position},
            gold=str(target),
            outputs={SALAM_OUTPUT_FIELD: _text(path, position, record, SALAM_OUTPUT_FIELD)},
            labelled_correct=label == 1,
            choices=salam_choices(_text(path, position, record, "response/prompt_str")),
            benchmark_gold=_text(path, position, record, "response/target_str"),
        )


def salam_choices(prompt: str) -> tuple[str, ...]:
    """The option texts listed after "Options:" in a SALAM prompt, one "(A) text" per line."""
    _, _, listing = prompt.rpartition("Options:")
    return tuple(found.group(1).strip() for found in _SALAM_OPTION_LINE.finditer(listing))


def _salam_benchmark(records: list[dict[str, Any]]) -> str:
    # SALAM names a BBQ task after its bias category ("Age_zero_shot"), a BBH task after the BBH task.
    first_task = str(records[0].get("task", "")) if records else ""
    return "bbq" if first_task.removesuffix("_zero_shot") in BBQ_CATEGORIES else "bbh"


def _read_fair_student_wrong(path: Path, data: Any) -> LabelledSeedFile:
    records = _list_of_records(path, data, FAIR_FIELDS)
    benchmark = _fair_benchmark(records[0])
    answers = [_fair_answer(path, position, record, benchmark) for position, record in enumerate(records)]
    return LabelledSeedFile("fair_student_wrong", benchmark, FAIR_SCORERS[benchmark],
                            "every record of a FAIR *_round0.json is a student answer the seed scored wrong",
                            answers)


def _fair_benchmark(record: dict[str, Any]) -> str:
    """Tell the FAIR benchmark from a record, the way infer_student_wrong.py wrote each one."""
    gold = str(record["gold_answer"])
    if "options" in record:
        return "logiqa"
    if gold.startswith(("true.\t", "false.\t")):
        return "strategyqa"
    if "####" in gold:
        return "gsm8k"
    return "svamp"


def _fair_answer(path: Path, position: int, record: dict[str, Any], benchmark: str) -> LabelledAnswer:
    gold = _text(path, position, record, "gold_answer")
    if benchmark == "strategyqa":
        gold = gold.split("\t")[0].strip().rstrip(".")  # "true.\t<facts>" -> "true"
    elif benchmark == "gsm8k":
        gold = gold.split("####")[-1].strip()  # FAIR kept GSM8K's whole solution as the gold answer
    choices = tuple(str(option) for option in record.get("options", ()))
    return LabelledAnswer(
        ref={"id": record["id"]},
        gold=gold,
        outputs={field: _text(path, position, record, field) for field in FAIR_OUTPUT_FIELDS},
        labelled_correct=False,
        choices=choices,
    )


def _load_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise DatasetFormatError("no such file", path=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _not_labelled(path, f"not valid JSON ({error})") from None


def _list_of_records(path: Path, data: Any, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not data:
        raise _not_labelled(path, "expected a non-empty JSON list of records")
    for position, record in enumerate(data):
        if not isinstance(record, dict):
            raise DatasetFormatError("not a JSON object", path=str(path), record=position)
        for field in fields:
            if field not in record:
                raise DatasetFormatError("missing field", path=str(path), record=position, field=field)
    return data


def _text(path: Path, position: int, record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DatasetFormatError(f"expected text, got {type(value).__name__}",
                                 path=str(path), record=position, field=field)
    return value


def _not_labelled(path: Path, reason: str) -> DatasetFormatError:
    return DatasetFormatError(f"{NOT_LABELLED}: {reason}", path=str(path))


def _example(answer: LabelledAnswer, gold: str, field: str, output: str, extracted: str | None,
             rescored: bool) -> dict[str, Any]:
    return {**answer.ref, "field": field, "gold": gold, "output": output,
            "extracted": extracted, "label": answer.labelled_correct, "rescored": rescored}


def _primary_field_first(examples: list[dict[str, Any]], fields: list[str], limit: int) -> list[dict[str, Any]]:
    return sorted(examples, key=lambda example: fields.index(example["field"]))[:limit]


def _report(path: str | Path, seed: LabelledSeedFile, scorer: str, tallies: dict[str, dict[str, int]],
            flips: dict[str, int], examples: list[dict[str, Any]]) -> dict[str, Any]:
    primary = next(iter(tallies.values()), {"agree": 0, "disagree": 0})
    report: dict[str, Any] = {
        "file": str(path), "format": seed.format, "benchmark": seed.benchmark, "scorer": scorer,
        "labels_from": seed.labels_from, "output_field": next(iter(tallies), None),
        "records": len(seed.answers), "agree": primary["agree"], "disagree": primary["disagree"], **flips,
    }
    if len(tallies) > 1:
        report["fields"] = tallies  # FAIR: the cut generation and the seed's own extraction, each re-scored
    report["examples"] = examples
    return report
