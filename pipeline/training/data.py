"""Training data for a run: chat examples and preference pairs built from approved feedback, attempts and problems.

Every builder is a pure function returning a ``Built``: the examples, and how many of its inputs it left
out, by plain-English reason. Prompts come from ``pipeline.exports`` and ``pipeline.prompts``, so an
example trains on exactly what the exports write. ``split_examples`` draws the validation split;
``write_jsonl`` / ``read_jsonl`` are the files the GPU worker reads:
SFT ``{"messages": [...], "part", "source"}`` (the last message, the assistant's, is the target) and
DPO ``{"prompt", "chosen", "rejected", "source"}`` (TRL's standard preference format).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.exports import ApprovedItem, ExportError, atomic_write, dpo_pairs, lema_prompt, salam_finetune_data
from pipeline.prompts import PromptConfig, answer_text, render_question, student_messages, worked_answer
from pipeline.training.config import PARTS

ROLES = ("system", "user", "assistant")
COT_PRESET = "lema"  # chain-of-thought targets close with LEMA's "The answer is X"
FAIR_FEEDBACK_REQUEST = "This answer is wrong. Explain what went wrong in it and how to reach the right answer."


class TrainingDataError(ValueError):
    """A training record or file that cannot be used; the message names the file and line where there is one."""


@dataclass(frozen=True)
class TrainingExample:
    """One SFT example: chat messages, the last one the assistant's target; ``source`` traces it back."""

    messages: tuple[dict[str, str], ...]
    part: str = "main"
    source: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"messages": [dict(message) for message in self.messages], "part": self.part,
                "source": dict(self.source)}

    @classmethod
    def from_json(cls, data: Any) -> TrainingExample:
        _check_keys(data, required=("messages",), optional=("part", "source"))
        messages = data["messages"]
        if not isinstance(messages, list) or len(messages) < 2:
            raise TrainingDataError("messages must be a list of at least two messages (a prompt and the target)")
        for number, message in enumerate(messages, 1):
            _check_message(message, number)
        if messages[-1]["role"] != "assistant":
            raise TrainingDataError("the last message must be the assistant's: it is what the model learns")
        part = data.get("part", "main")
        if part not in PARTS:
            raise TrainingDataError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
        return cls(tuple(dict(message) for message in messages), part, _source(data))


@dataclass(frozen=True)
class PreferencePair:
    """One DPO pair: for ``prompt``, ``chosen`` is preferred over ``rejected``."""

    prompt: str
    chosen: str
    rejected: str
    source: dict[str, Any] = field(default_factory=dict)
    part: ClassVar[str] = "main"

    def to_json(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected, "source": dict(self.source)}

    @classmethod
    def from_json(cls, data: Any) -> PreferencePair:
        texts = ("prompt", "chosen", "rejected")
        _check_keys(data, required=texts, optional=("source",))
        for name in texts:
            if not isinstance(data[name], str) or not data[name].strip():
                raise TrainingDataError(f"{name} must be non-empty text, got {data[name]!r}")
        return cls(data["prompt"], data["chosen"], data["rejected"], _source(data))


def _check_keys(data: Any, *, required: Sequence[str], optional: Sequence[str]) -> None:
    if not isinstance(data, dict):
        raise TrainingDataError(f"a record must be a JSON object, got {type(data).__name__}")
    missing = [key for key in required if key not in data]
    unknown = sorted(str(key) for key in data if key not in (*required, *optional))
    if missing:
        raise TrainingDataError(f"the record has no {missing[0]!r}")
    if unknown:
        raise TrainingDataError(f"unknown key {unknown[0]!r}; known: {', '.join((*required, *optional))}")


def _check_message(message: Any, number: int) -> None:
    if not isinstance(message, dict) or set(message) != {"role", "content"}:
        raise TrainingDataError(f"message {number} must be an object with exactly role and content")
    if message["role"] not in ROLES:
        raise TrainingDataError(f"message {number} has role {message['role']!r}; known: {', '.join(ROLES)}")
    if not isinstance(message["content"], str):
        raise TrainingDataError(f"message {number} content must be text")


def _source(data: dict[str, Any]) -> dict[str, Any]:
    source = data.get("source", {})
    if not isinstance(source, dict):
        raise TrainingDataError(f"source must be an object, got {source!r}")
    return dict(source)


@dataclass
class Built:
    """What a builder made, and how many of its inputs it left out, keyed by a plain-English reason."""

    examples: list[Any]
    skipped: dict[str, int] = field(default_factory=dict)


# --- SFT builders ----------------------------------------------------------------------------------

def _chat(user: str, assistant: str, part: str, source: dict[str, Any]) -> TrainingExample:
    return TrainingExample(({"role": "user", "content": user}, {"role": "assistant", "content": assistant}),
                           part, source)


def _item_source(index: int, item: ApprovedItem) -> dict[str, Any]:
    """``index`` is the item's position in the builder's input: the caller maps it back to its feedback row."""
    return {"index": index, "problem": item.problem.external_id, "method": item.method, "teacher": item.teacher}


def _require(items: Sequence[ApprovedItem], method: str, builder: str) -> None:
    for item in items:
        if item.method != method:
            raise ExportError(f"{item.label}: {builder} builds from {method} feedback only")


def salam_assistant_examples(items: Iterable[ApprovedItem]) -> Built:
    """SALAM's study assistant: its prompt (question, the student's wrong answer, the gold) -> the
    {reason, guideline} JSON."""
    items = list(items)
    _require(items, "salam", "salam_assistant_examples")
    instances = salam_finetune_data(items)["instances"]  # raises ExportError for text that is not the JSON
    return Built([_chat(instance["input"], instance["output"], "main", _item_source(index, item))
                  for index, (item, instance) in enumerate(zip(items, instances))])


def lema_student_examples(
    items: Iterable[ApprovedItem], cot_problems: Sequence[ProblemRecord] = (), cot_ratio: float = 0.0, seed: int = 0
) -> Built:
    """LEMA's student: question + wrong solution -> the approved correction, mixed with chain-of-thought examples.

    ``cot_ratio`` is chain-of-thought examples per correction (1.0: as many of each), drawn from the
    ``cot_problems`` that have a gold rationale by a hash of (seed, problem), so the draw does not depend
    on their order. When too few have one, all are used and the shortfall is reported in ``skipped``.
    """
    items = list(items)
    _require(items, "lema", "lema_student_examples")
    if isinstance(cot_ratio, bool) or not isinstance(cot_ratio, (int, float)) or not 0 <= cot_ratio <= 100:
        raise ValueError(f"cot_ratio must be a number from 0 to 100, got {cot_ratio!r}")
    examples = [_chat(lema_prompt(item), item.text, "main", _item_source(index, item))
                for index, item in enumerate(items)]
    wanted = _half_up(cot_ratio * len(examples))
    usable = [(index, problem) for index, problem in enumerate(cot_problems) if problem.gold_rationale.strip()]
    drawn = sorted(sorted(usable, key=lambda pair: _rank(seed, _problem_key(pair[1])))[:wanted])
    examples += [_qa_example(index, problem, "cot", rationale=True) for index, problem in drawn]
    shortfall = wanted - len(drawn)
    return Built(examples, {"chain-of-thought examples missing: too few problems with a gold rationale": shortfall}
                 if shortfall else {})


def fair_student_examples(items: Iterable[ApprovedItem]) -> Built:
    """FAIR's student, two parts: "feedback" (question + wrong answer -> the approved feedback) and
    "rationale" (question -> a teacher's rationale that peer review did not reject), identical ones once."""
    items = list(items)
    _require(items, "fair", "fair_student_examples")
    examples: list[TrainingExample] = []
    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    for index, item in enumerate(items):
        source = _item_source(index, item)
        if item.wrong.output.strip():
            examples.append(_chat(fair_feedback_prompt(item), item.text, "feedback", source))
        else:
            skipped["feedback without a wrong answer to show"] += 1
        rationale = str(item.fields.get("rationale") or "").strip()
        if rationale:
            _add_fair_rationale(examples, skipped, seen, item, _chat(render_question(item.problem), rationale,
                                                                     "rationale", source))
    return Built(examples, dict(skipped))


def _add_fair_rationale(examples: list, skipped: Counter, seen: set[str], item: ApprovedItem,
                        example: TrainingExample) -> None:
    key = _content_key(example)
    if item.fields.get("peer_accepted") is False:
        skipped["rationale rejected by peer review"] += 1
    elif key in seen:
        skipped["duplicate rationale"] += 1
    else:
        seen.add(key)
        examples.append(example)


def fair_feedback_prompt(item: ApprovedItem) -> str:
    """The question and the student's wrong answer, asking what went wrong (FAIR's feedback part)."""
    return (f"Question: {render_question(item.problem)}\n\nA student answered:\n{item.wrong.output.strip()}\n\n"
            f"{FAIR_FEEDBACK_REQUEST}")


def gsi_iteration_examples(pairs: Iterable[tuple[ProblemRecord, AttemptRecord]],
                           prompt: PromptConfig | None = None) -> Built:
    """GSI's next iteration: every correct attempt as (question -> its output); the same output for a problem once.

    With ``prompt`` (the gather run's prompt settings) the question is asked as the student was asked it,
    system message and instruction included, so the next iteration learns in the format it is sampled with;
    a guided round's hint is never part of it.
    """
    examples, skipped, seen = [], Counter(), set()
    for index, (problem, attempt) in enumerate(pairs):
        if attempt.problem_external_id != problem.external_id:
            raise ValueError(f"pair {index}: the attempt answers {attempt.problem_external_id!r}, "
                             f"not problem {problem.external_id!r}")
        key = (problem.external_id, attempt.output.strip())
        if not attempt.correct:
            skipped["wrong answer"] += 1
        elif key in seen:
            skipped["duplicate sample"] += 1
        else:
            seen.add(key)
            asked = student_messages(problem, prompt) if prompt else [{"role": "user", "content": render_question(problem)}]
            examples.append(TrainingExample((*asked, {"role": "assistant", "content": key[1]}), "main", {
                "index": index, "problem": problem.external_id, "round": attempt.round,
                "sample_index": attempt.sample_index, "guidance": attempt.guidance}))
    return Built(examples, dict(skipped))


def qa_examples(problems: Iterable[ProblemRecord], *, rationale: bool = False) -> Built:
    """Question -> gold answer ("(B)" for a letter), or with ``rationale`` the worked solution where there is one."""
    examples, skipped = [], Counter()
    for index, problem in enumerate(problems):
        if problem.gold_answer.strip() or (rationale and problem.gold_rationale.strip()):
            examples.append(_qa_example(index, problem, "main", rationale=rationale))
        else:
            skipped["no gold answer"] += 1
    return Built(examples, dict(skipped))


def _qa_example(index: int, problem: ProblemRecord, part: str, *, rationale: bool) -> TrainingExample:
    target = worked_answer(problem, COT_PRESET) if rationale else answer_text(problem)
    return _chat(render_question(problem), target, part, {"index": index, "problem": problem.external_id})


# --- DPO builders ----------------------------------------------------------------------------------

def dpo_pairs_from_items(items: Iterable[ApprovedItem]) -> Built:
    """The question; chosen the approved correction, rejected the student's wrong output (``exports.dpo_pairs``).

    LbT items are skipped: an LbT rationale answers the problem itself, so there is no wrong answer to
    reject (the web side gives them an empty placeholder attempt); so is any item whose wrong output is empty.
    """
    items, skipped = list(items), Counter()
    kept = []
    for index, item in enumerate(items):
        if item.method == "lbt":
            skipped["LbT rationale: no wrong answer to reject"] += 1
        elif not item.wrong.output.strip():
            skipped["no wrong answer to reject"] += 1
        elif not item.text.strip():
            skipped["no approved text to prefer"] += 1
        else:
            kept.append((index, item))
    rows = dpo_pairs([item for _, item in kept])  # raises ExportError for SALAM feedback
    return Built([PreferencePair(row["prompt"], row["chosen"], row["rejected"], _item_source(index, item))
                  for (index, item), row in zip(kept, rows)], dict(skipped))


def dpo_pairs_from_scores(
    scored: Iterable[tuple[ProblemRecord, str, float]], min_margin: float = 0.0
) -> Built:
    """LbT's preference pairs: per problem the highest-scored rationale over the lowest, when the scores
    differ by more than ``min_margin``. Ties go to the rationale seen first; empty rationales are left out."""
    groups: dict[str, list[tuple[int, ProblemRecord, str, float]]] = {}
    for index, (problem, rationale, score) in enumerate(scored):
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ValueError(f"row {index}: the score must be a finite number, got {score!r}")
        if rationale.strip():
            groups.setdefault(problem.external_id, []).append((index, problem, rationale, float(score)))
    pairs, skipped = [], Counter()
    for rows in groups.values():
        best = max(rows, key=lambda row: row[3])  # max and min return the first of equals
        worst = min(rows, key=lambda row: row[3])
        if best[3] - worst[3] <= min_margin:
            skipped["problem whose scores differ by no more than min_margin"] += 1
            continue
        pairs.append(PreferencePair(render_question(best[1]), best[2], worst[2], {
            "problem": best[1].external_id, "chosen_index": best[0], "rejected_index": worst[0],
            "chosen_score": best[3], "rejected_score": worst[3]}))
    return Built(pairs, dict(skipped))


# --- split, files, summary -------------------------------------------------------------------------

def _content_key(example: TrainingExample | PreferencePair) -> str:
    """What the model sees, without the source: two copies of one example have the same key."""
    content = {key: value for key, value in example.to_json().items() if key != "source"}
    return json.dumps(content, sort_keys=True, ensure_ascii=False)


def _problem_key(problem: ProblemRecord) -> str:
    return f"{problem.external_id}\x00{problem.question}"


def _half_up(value: float) -> int:
    """2.5 -> 3 (Python's round() gives 2): counts a reader can work out by hand."""
    return math.floor(value + 0.5)


def _rank(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).digest()


def split_examples(examples: Iterable[Any], validation_share: float = 0.1, seed: int = 0) -> tuple[list, list]:
    """(train, validation): the examples whose hash of (seed, content) ranks lowest go to validation.

    The same examples in any order give the same split (each list keeps the input's order). With a share
    above 0 and at least two examples, at least one goes to validation and at least one stays in train.
    """
    examples = list(examples)
    if isinstance(validation_share, bool) or not isinstance(validation_share, (int, float)) \
            or not 0 <= validation_share < 1:
        raise ValueError(f"validation_share must be a number from 0 up to (not including) 1, got {validation_share!r}")
    count = 0
    if validation_share > 0 and len(examples) >= 2:
        count = min(len(examples) - 1, max(1, _half_up(validation_share * len(examples))))
    ranked = sorted(range(len(examples)), key=lambda index: _rank(seed, _content_key(examples[index])))
    chosen = set(ranked[:count])
    return ([example for index, example in enumerate(examples) if index not in chosen],
            [example for index, example in enumerate(examples) if index in chosen])


def write_jsonl(examples: Iterable[TrainingExample | PreferencePair], path: str | Path) -> None:
    """One JSON object per line, UTF-8, written whole or not at all."""
    atomic_write(path, ((json.dumps(example.to_json(), ensure_ascii=False) + "\n").encode("utf-8")
                        for example in examples))


def read_jsonl(path: str | Path) -> list[TrainingExample | PreferencePair]:
    """The records of a training file; a malformed line is a TrainingDataError naming the file and line."""
    records: list[TrainingExample | PreferencePair] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
                if line.strip():
                    records.append(_record(json.loads(line), records[0] if records else None))
            except UnicodeDecodeError:
                raise TrainingDataError(f"{path}, line {number}: not UTF-8 text") from None
            except json.JSONDecodeError as error:
                raise TrainingDataError(f"{path}, line {number}: not JSON ({error.msg} at column {error.colno})") \
                    from None
            except TrainingDataError as error:
                raise TrainingDataError(f"{path}, line {number}: {error}") from None
    return records


def _record(data: Any, first: TrainingExample | PreferencePair | None) -> TrainingExample | PreferencePair:
    kind = PreferencePair if isinstance(data, Mapping) and "prompt" in data else TrainingExample
    if first is not None and not isinstance(first, kind):
        raise TrainingDataError("a file holds chat examples or preference pairs, not both")
    return kind.from_json(data)


def data_summary(train: Sequence[Any], validation: Sequence[Any]) -> dict[str, Any]:
    """Counts per split and per part:
    ``{"train": 9, "validation": 1, "parts": {"main": {"train": 9, "validation": 1}}}``."""
    counts = {"train": Counter(example.part for example in train),
              "validation": Counter(example.part for example in validation)}
    present = [part for part in PARTS if counts["train"][part] or counts["validation"][part]]
    return {"train": len(train), "validation": len(validation),
            "parts": {part: {"train": counts["train"][part], "validation": counts["validation"][part]}
                      for part in present}}
