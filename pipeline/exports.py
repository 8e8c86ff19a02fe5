"""Training data from approved feedback: SALAM finetune data, LEMA and TRL JSONL, FAIR rows, DPO pairs.

Every writer takes ``ApprovedItem``s (a problem, the student's wrong answer and the feedback as a human
approved or edited it), builds all records first (an item a format cannot hold raises ``ExportError``
naming it, before any file is touched), then writes the file atomically: a temporary file beside it,
renamed over it once complete. Each ``write_*`` returns the records it wrote.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.prompts import answer_text, render_question
from pipeline.seeds import fair, salam_finetune
from pipeline.seeds.layout import JsonLayout
from pipeline.seeds.records import SeedBundle
from pipeline.seeds.salam import prompt_text

METHODS = ("salam", "lema", "fair", "gsi", "lbt")
SALAM_LAYOUT = JsonLayout()  # json.dump(indent=2), ASCII escapes, no final newline: the released file's bytes
FAIR_LAYOUT = JsonLayout(indent=4)  # FAIR's json.dump(indent=4)
LEMA_INSTRUCTION = (
    "The original solution to the following question may contain errors. Please identify the incorrect step "
    "in the solution, explain why it is incorrect, and provide the correct solution starting from that step."
)


@dataclass(frozen=True)
class ApprovedItem:
    """One approved piece of feedback on one wrong answer.

    ``fields`` is the teacher's typed output: salam {reason, guideline}; lema {incorrect_step, explanation,
    corrected_solution, corrected_answer}; fair {feedback, rationale?, peer_scores?, peer_accepted?}, or
    {rationale, ...} alone when the teacher's feedback is unknown (a FAIR rationale file imported by itself);
    gsi {correction}. ``text`` is what training uses, as a human approved or edited it: for FAIR the feedback,
    or the rationale when there is no feedback; for SALAM the JSON string SALAM trains on
    (``salam_finetune.render_output(reason, guideline)``); for LEMA ``lema_correction_text(fields)`` is the
    layout to start from. ``wrong`` is ``no_wrong_answer(problem)`` for an LbT rationale, which answers the
    problem itself.
    """

    problem: ProblemRecord
    wrong: AttemptRecord
    method: str
    teacher: str
    fields: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")

    @property
    def has_wrong_answer(self) -> bool:
        """Whether there is a student's answer to reject: not for an LbT rationale (nor an empty output)."""
        return bool(self.wrong.output.strip())

    @property
    def label(self) -> str:
        """The item in messages: "'svamp-12' (lema feedback by gpt-4o)"."""
        return f"{self.problem.external_id!r} ({self.method} feedback by {self.teacher})"


def no_wrong_answer(problem: ProblemRecord) -> AttemptRecord:
    """The ``wrong`` of an item about the problem itself (an LbT rationale): no student output at all."""
    return AttemptRecord(problem_external_id=problem.external_id, output="", extracted=None, correct=False)


class ExportError(ValueError):
    """An item that a format cannot hold; the message names the item and the format."""


@dataclass(frozen=True)
class ExportFormat:
    """One export: ``write(items, path)`` writes the file and returns its records; ``methods`` it can hold.

    ``needs_wrong_answer``: each record pairs the approved text with the student's wrong answer (DPO), so an
    item without one (an LbT rationale) cannot be written.
    """

    name: str
    description: str
    file_suffix: str
    write: Callable[[Sequence[ApprovedItem], str | Path], Any]
    methods: tuple[str, ...] = METHODS
    needs_wrong_answer: bool = False

    def accepts(self, item: ApprovedItem) -> bool:
        """Whether ``write`` takes the item: one of its methods, with a wrong answer when it needs one."""
        return item.method in self.methods and (item.has_wrong_answer or not self.needs_wrong_answer)


# --- prompts ---------------------------------------------------------------------------------------

def student_answer(wrong: AttemptRecord) -> str:
    """The wrong answer as SALAM quotes it: the extracted answer, else the whole output."""
    return wrong.extracted if wrong.extracted is not None else wrong.output.strip()


def salam_input(item: ApprovedItem) -> str:
    """SALAM's feedback prompt: question and options, the student's answer, the gold, the instruction."""
    return salam_finetune.render_input(prompt_text(item.problem), student_answer(item.wrong), answer_text(item.problem))


def lema_prompt(item: ApprovedItem) -> str:
    """LEMA's correction input: the question and the student's original (wrong) solution."""
    return (f"{LEMA_INSTRUCTION}\n\nQuestion: {render_question(item.problem)}\n"
            f"Original Solution:\n{item.wrong.output.strip()}\n")


def lema_correction_text(fields: dict[str, Any]) -> str:
    """A LEMA correction laid out as LEMA's correction prompts write one."""
    return (f"Incorrect Step: {fields.get('incorrect_step', '')}\nExplanation: {fields.get('explanation', '')}\n"
            f"Correct Solution:\n{fields.get('corrected_solution', '')}")


def training_prompt(item: ApprovedItem) -> str:
    """What the approved text answers: SALAM's prompt, the question alone (LbT), else LEMA's correction input."""
    if item.method == "salam":
        return salam_input(item)
    if item.method == "lbt":
        return render_question(item.problem)
    return lema_prompt(item)


# --- records ---------------------------------------------------------------------------------------

def salam_finetune_data(items: Sequence[ApprovedItem]) -> dict[str, Any]:
    """SALAM's ``{"type": "text2text", "instances": [{input, output}]}``; the text must be SALAM's JSON."""
    _check_methods(items, "salam_finetune")
    return {"type": salam_finetune.FILE_TYPE,
            "instances": [{"input": salam_input(item), "output": _salam_output(item)} for item in items]}


def _salam_output(item: ApprovedItem) -> str:
    reason, guideline, error = salam_finetune.parse_output(item.text)
    if error:
        raise ExportError(f"{item.label}: the SALAM finetune format needs text that is a JSON "
                          f"{{reason, guideline}} object; {error}")
    return salam_finetune.render_output(reason, guideline)


def lema_records(items: Sequence[ApprovedItem]) -> list[dict[str, str]]:
    """LEMA's training JSONL: ``{prompt, completion}``, the completion being the approved text."""
    _check_methods(items, "lema")
    return [{"prompt": training_prompt(item), "completion": item.text} for item in items]


def chat_records(items: Sequence[ApprovedItem]) -> list[dict[str, Any]]:
    """TRL's conversational language-modeling rows: ``{"messages": [user, assistant]}``."""
    _check_methods(items, "chat")
    return [{"messages": [{"role": "user", "content": training_prompt(item)},
                          {"role": "assistant", "content": item.text}]} for item in items]


def dpo_pairs(items: Sequence[ApprovedItem]) -> list[dict[str, str]]:
    """TRL's standard preference rows: the question; chosen the approved text, rejected the wrong output.

    An item with no wrong answer (an LbT rationale answers the problem itself) makes no pair: it raises
    ``ExportError`` rather than write an empty "rejected"; ``EXPORT_FORMATS["dpo"].accepts`` leaves it out.
    """
    _check_methods(items, "dpo")
    for item in items:
        if not item.has_wrong_answer:
            raise ExportError(f"{item.label}: a DPO pair rejects the student's wrong answer, and this item has "
                              "none (an LbT rationale answers the problem itself)")
    return [{"prompt": render_question(item.problem), "chosen": item.text, "rejected": item.wrong.output}
            for item in items]


def fair_rows(items: Sequence[ApprovedItem]) -> list[dict[str, Any]]:
    """FAIR's rows: one per wrong answer, each teacher's ``<teacher>_feedback`` and ``<teacher>_rationale``.

    The five student fields are what FAIR's own files hold (see ``pipeline.seeds.fair``); a rationale is
    ``[text, *peer scores]`` and ``correct_rationale`` lists those peer review did not reject.
    """
    _check_methods(items, "fair")
    groups: dict[tuple[Any, ...], list[ApprovedItem]] = {}
    for item in items:
        wrong = item.wrong
        key = (item.problem.external_id, wrong.round, wrong.sample_index, wrong.output)
        groups.setdefault(key, []).append(item)
    return [_fair_row(group) for group in groups.values()]


def _fair_row(group: list[ApprovedItem]) -> dict[str, Any]:
    first = group[0]
    wrong = replace(first.wrong, correct=False)  # fair.write keeps wrong answers only
    benchmark = first.problem.metadata.get("benchmark", "")
    row = fair.write(SeedBundle("errata", benchmark, [first.problem], [wrong]), "fair_false")[0]
    teachers = [item.teacher for item in group]
    repeated = next((name for name in teachers if teachers.count(name) > 1), None)
    if repeated is not None:
        raise ExportError(f"{first.label}: teacher {repeated!r} has more than one approved feedback on "
                          "this wrong answer; a FAIR row holds one per teacher")
    texts = [(item, *fair_texts(item)) for item in group]
    row.update({f"{item.teacher}_feedback": feedback for item, feedback, _ in texts if feedback is not None})
    rated = [(item, rationale) for item, _, rationale in texts if rationale]
    row.update({f"{item.teacher}_rationale": [rationale, *_peer_scores(item)] for item, rationale in rated})
    if rated:
        row["correct_rationale"] = [rationale for item, rationale in rated
                                    if item.fields.get("peer_accepted") is not False]
    return row


def fair_texts(item: ApprovedItem) -> tuple[str | None, str | None]:
    """(feedback, rationale): the approved text is the feedback, or the rationale when the teacher wrote only that."""
    if "rationale" in item.fields and "feedback" not in item.fields:
        return None, item.text
    return item.text, item.fields.get("rationale")


def _peer_scores(item: ApprovedItem) -> list[Any]:
    scores = item.fields.get("peer_scores") or []
    return list(scores.values()) if isinstance(scores, dict) else list(scores)


def _check_methods(items: Iterable[ApprovedItem], format_name: str) -> None:
    methods = EXPORT_FORMATS[format_name].methods
    for item in items:
        if item.method not in methods:
            raise ExportError(f"{item.label}: the {format_name} format holds {', '.join(methods)} feedback only")


# --- files -----------------------------------------------------------------------------------------

def write_salam_finetune(items: Sequence[ApprovedItem], path: str | Path) -> dict[str, Any]:
    data = salam_finetune_data(items)
    atomic_write(path, [SALAM_LAYOUT.dumps(data)])
    return data


def write_lema(items: Sequence[ApprovedItem], path: str | Path) -> list[dict[str, str]]:
    return _write_jsonl(lema_records(items), path)


def write_chat(items: Sequence[ApprovedItem], path: str | Path) -> list[dict[str, Any]]:
    return _write_jsonl(chat_records(items), path)


def write_dpo(items: Sequence[ApprovedItem], path: str | Path) -> list[dict[str, str]]:
    return _write_jsonl(dpo_pairs(items), path)


def write_fair_rows(items: Sequence[ApprovedItem], path: str | Path) -> list[dict[str, Any]]:
    rows = fair_rows(items)
    atomic_write(path, [FAIR_LAYOUT.dumps(rows)])
    return rows


def _write_jsonl(records: list[dict[str, Any]], path: str | Path) -> list[dict[str, Any]]:
    """One JSON object per line, UTF-8 as is (``datasets`` and TRL read it either way)."""
    atomic_write(path, ((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8") for record in records))
    return records


def atomic_write(path: str | Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` whole or not at all: a failure leaves no partial file and the old one intact."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle = tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, mode)  # a temporary file is created 0600
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


EXPORT_FORMATS: dict[str, ExportFormat] = {export.name: export for export in (
    ExportFormat("salam_finetune", 'SALAM finetune data: {"type": "text2text", "instances": [{input, output}]}, '
                 "output the {reason, guideline} JSON", ".json", write_salam_finetune, ("salam",)),
    ExportFormat("lema", "LEMA training JSONL: {prompt, completion}, prompt the question and the wrong "
                 "solution, completion the correction", ".jsonl", write_lema),
    ExportFormat("fair", "FAIR rows: the student's wrong answer with each teacher's <teacher>_feedback and "
                 "<teacher>_rationale, and correct_rationale", ".json", write_fair_rows, ("fair",)),
    ExportFormat("chat", 'TRL SFTTrainer conversational JSONL: {"messages": [user, assistant]}', ".jsonl",
                 write_chat),
    ExportFormat("dpo", "TRL DPOTrainer preference JSONL: {prompt, chosen: the approved correction, rejected: "
                 "the student's wrong answer}; items with no wrong answer (LbT rationales) are left out", ".jsonl",
                 write_dpo, ("lema", "fair", "gsi", "lbt"), needs_wrong_answer=True),
)}
