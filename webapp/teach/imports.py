"""Imports the papers' released feedback (SALAM finetune data, FAIR feedback and rationale files) as teacher runs.

Each file becomes a finished gather run holding the student's wrong answers and a finished teacher run
holding one ``Feedback`` per wrong answer and teacher, named ``imported:<teacher>`` with no endpoint. The
teacher run's config keeps the file's sha256: importing the same file again adds nothing.

A FAIR round comes in two halves, ``*_feedback_round0.json`` and ``*_rationale_round0.json``, about the same
wrong answers. Whichever is imported second joins the first one's run: the same dataset, wrong answers and
Feedback rows, each teacher's Feedback then holding its feedback and its rationale with the peer scores, as
a FAIR teacher run writes them (so the FAIR rows export has both).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from pipeline import teaching
from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.fields import field_value, id_field, json_kind, text_field, text_list_field
from pipeline.benchmarks.reading import Item, SourceFile, json_document
from pipeline.benchmarks.records import DatasetFormatError, ProblemRecord
from pipeline.seeds import read_seed_file
from pipeline.seeds.detect import detect_seed_format
from pipeline.seeds.records import record_list
from pipeline.seeds.salam_finetune import FILE_TYPE, FinetuneInstance, instance_records, read_salam_finetune
from webapp.datasets.models import Problem
from webapp.core.uploads import file_sha256, upload_on_disk
from webapp.datasets.services import ImportRejected, problems_add
from webapp.gather.models import Attempt
from webapp.gather.seeds import ANSWER_FORMATS, SeedImportError, seed_import
from webapp.runs.models import Run, RunEvent, RunKind, RunStatus
from webapp.runs.services import run_log
from webapp.teach.methods import per_teacher_counts
from webapp.teach.models import Feedback, Method

FORMATS = {
    "salam_finetune": 'SALAM finetune data: {"type": "text2text", "instances": [{input, output}]}',
    "fair_feedback": "FAIR *_feedback_round0.json: each teacher's <teacher>_feedback on the student's wrong answer",
    "fair_rationale": "FAIR *_rationale_round0.json: <teacher>_rationale [text, peer scores...] and correct_rationale",
}
IMPORTED = "imported:"  # teacher_name prefix: the name in the file follows
SALAM_TEACHER = "gpt-4"  # the seed data's README: GPT-4 wrote SALAM's released feedback; the file names no one
FAIR_SUFFIXES = {"fair_feedback": "_feedback", "fair_rationale": "_rationale"}
ACCEPTED_FIELD = "correct_rationale"  # FAIR: the rationales peer review accepted; ends in _rationale too
FAIR_RULE_COUNTS = ("fair_rule_agrees", "fair_rule_differs")


class FeedbackImportError(ValueError):
    """A feedback import that cannot start (an unknown format, an option the format does not take)."""


# What an import of a bad file raises; nothing is added then, and the message says what is wrong where.
IMPORT_ERRORS = (DatasetFormatError, FeedbackImportError, SeedImportError, ImportRejected)


@dataclass(frozen=True)
class FileFeedback:
    """One teacher's text on one FAIR row; a rationale also has its peer scores as written and FAIR's verdict."""

    teacher: str
    text: str
    scores: tuple[Any, ...] = ()
    accepted: bool | None = None


def imported_feedback_run(path: str | Path) -> Run | None:
    """The teacher run an earlier import of this exact file made, if any."""
    return _earlier_run(file_sha256(Path(path)))


def _earlier_run(digest: str) -> Run | None:
    """The teacher run the file made, or joined (the other half of a FAIR round, see ``_import_fair``)."""
    joined = Q(config__merged__fair_feedback__sha256=digest) | Q(config__merged__fair_rationale__sha256=digest)
    return Run.objects.filter(Q(config__imported__sha256=digest) | joined, kind=RunKind.TEACH).first()


def feedback_import(*, path: str | Path, format: str | None = None, user=None, teacher_name: str = "") -> Run:
    """Import a released feedback file as a finished teacher run; ``format=None`` tells it from the content.

    All or nothing: a bad file raises ``DatasetFormatError`` naming the record and field, and adds nothing.
    ``teacher_name`` names SALAM's teacher (default gpt-4); FAIR files name theirs.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError("no such file", path=str(path))
    if format is not None and format not in FORMATS:
        raise FeedbackImportError(f"unknown feedback format {format!r}; known: {', '.join(FORMATS)}")
    imported = {"file": path.name, "sha256": file_sha256(path)}
    earlier = _earlier_run(imported["sha256"])
    if earlier is not None:
        return earlier
    imported["format"] = format = format or detect_feedback_format(path)
    if format == "salam_finetune":
        return _import_salam(path, imported, user, teacher_name.removeprefix(IMPORTED) or SALAM_TEACHER)
    if teacher_name:
        raise FeedbackImportError(f"a {format} file names its own teachers; leave the teacher name out")
    return _import_fair(path, imported, user)


class FeedbackUploaded(NamedTuple):
    run: Run
    already: bool  # imported before: nothing added
    report: list[str]  # feedback_import_report's sentences


def feedback_import_upload(*, upload, format: str | None = None, user=None, teacher_name: str = "") -> FeedbackUploaded:
    """An uploaded file (the page's or the API's) imported as ``feedback_import`` imports a file on disk; raises
    what it raises (IMPORT_ERRORS)."""
    with upload_on_disk(upload) as path:
        already = imported_feedback_run(path) is not None
        run = feedback_import(path=path, format=format, user=user, teacher_name=teacher_name)
        return FeedbackUploaded(run, already, feedback_import_report(run, file_name=path.name, already=already))


def feedback_import_report(run: Run, *, file_name: str, already: bool) -> list[str]:
    """What importing ``file_name`` did, in sentences for the person importing; the last one holds the counts."""
    lines = []
    if already:
        lines.append(f"Already imported as run #{run.pk} {run.name!r}; nothing added.")
    elif any(joined["file"] == file_name for joined in run.config.get("merged", {}).values()):
        lines.append(f"{file_name} is about the same wrong answers as {run.config['imported']['file']}: "
                     f"it joined run #{run.pk}, each teacher's feedback and rationale together.")
    counts = run.counts
    teachers = ", ".join(f"{name} {row['total']}" for name, row in sorted(counts["per_teacher"].items()))
    line = f"Run #{run.pk} {run.name!r}: {counts['feedback']} feedback ({teachers}); {counts['parse_failures']} parse failures"
    if "fair_rule_agrees" in counts:
        line += (f"; {counts['peer_accepted']} rationales accepted by peer review, FAIR's rule agreeing on "
                 f"{counts['fair_rule_agrees']} of {counts['fair_rule_agrees'] + counts['fair_rule_differs']}")
    return lines + [line + "."]


def detect_feedback_format(path: Path) -> str:
    """salam_finetune, fair_feedback or fair_rationale, from the file's content."""
    source = SourceFile(path, path.name)
    data = json_document(source)
    if isinstance(data, dict) and data.get("type") == FILE_TYPE:
        return "salam_finetune"
    if isinstance(data, list):
        seed_format = detect_seed_format(source, data)
        if seed_format in FAIR_SUFFIXES:
            return seed_format
        raise source.error(f"a {seed_format} file of student answers holds no teacher feedback; "
                           "import it with import_seed")
    raise source.error(f"not a feedback file: expected {FORMATS['salam_finetune']} or a FAIR JSON array of rows, "
                       f"got {json_kind(data)}")


# --- SALAM finetune data ---------------------------------------------------------------------------

def _import_salam(path: Path, imported: dict, user, teacher: str) -> Run:
    instances = read_salam_finetune(path)
    records = [_salam_records(path, number, instance) for number, instance in enumerate(instances, start=1)]
    problems = [problem for problem, _ in records]
    benchmark = _salam_benchmark(path, problems)
    with transaction.atomic():
        dataset, _ = problems_add(
            name=f"salam_finetune {path.stem}", benchmark=benchmark, answer_format=ANSWER_FORMATS[benchmark],
            records=problems, splits=["train"] * len(problems), user=user, source=path.name,
            split_rule={"split_rule": "file", "seed_format": "salam_finetune"},
        )
        gather = _salam_gather_run(imported, dataset, [wrong for _, wrong in records], user)
        attempts = _attempts_by_problem(gather)
        run = _teacher_run(imported, Method.SALAM, gather, user)
        Feedback.objects.bulk_create([
            _salam_feedback(run, attempts[problem.external_id], instance, f"{IMPORTED}{teacher}")
            for problem, instance in zip(problems, instances)
        ])
        _finish(run, {})
    return run


def _salam_records(path: Path, number: int, instance: FinetuneInstance) -> tuple[ProblemRecord, AttemptRecord]:
    records = instance_records(instance, f"{path.stem}-{number}")
    if records is None:
        raise DatasetFormatError("is not SALAM's feedback prompt (question, options, 'We get the answer ... from "
                                 "the model while the true answer is ...', instruction)",
                                 path=path.name, record=number, field="input")
    return records


def _salam_benchmark(path: Path, problems: list[ProblemRecord]) -> str:
    """bbq or bbh: SALAM's file names say (bbq_src_data, bbh_src_data); else BBQ's three options decide."""
    prefix = path.name[:3].lower()
    if prefix in ("bbq", "bbh"):
        return prefix
    lettered = [problem for problem in problems if problem.choices]
    # Every BBQ question has three options: two people and an "unknown" one.
    return "bbq" if lettered and all(len(problem.choices) == 3 for problem in lettered) else "bbh"


def _salam_gather_run(imported: dict, dataset, wrongs: list[AttemptRecord], user) -> Run:
    now = timezone.now()
    run = Run.objects.create(
        kind=RunKind.GATHER, name=f"Imported {imported['file']}", status=RunStatus.SUCCEEDED, created_by=user,
        config={"dataset_id": dataset.pk, "imported": {**imported, "model_name": "imported"}},
        started_at=now, finished_at=now, progress_done=len(wrongs), progress_total=len(wrongs),
        counts={"correct": 0, "wrong": len(wrongs)},
    )
    problem_ids = dict(Problem.objects.filter(dataset=dataset).values_list("external_id", "pk"))
    Attempt.objects.bulk_create([
        Attempt(run=run, problem_id=problem_ids[wrong.problem_external_id], model_name="imported", prompt="",
                raw_output=wrong.output, extracted=wrong.extracted, correct=False, scorer="seed:salam_finetune")
        for wrong in wrongs
    ])
    return run


def _salam_feedback(run: Run, attempt: Attempt, instance: FinetuneInstance, teacher_name: str) -> Feedback:
    return Feedback(
        run=run, attempt=attempt, problem_id=attempt.problem_id, method=Method.SALAM, teacher_name=teacher_name,
        prompt=json.dumps([{"role": "user", "content": instance.input}], ensure_ascii=False),
        raw_output=instance.output_raw, parse_ok=instance.ok, parse_error=instance.error,
        fields={"reason": instance.reason, "guideline": instance.guideline},
        text=instance.output_raw,  # the string SALAM trained on, byte for byte
    )


# --- FAIR feedback and rationale files -------------------------------------------------------------

class FairRowKey(NamedTuple):
    """What a FAIR row is about, as both halves of a round (feedback and rationale file) write it."""

    external_id: str
    question: str
    wrong_output: str


def read_fair_teacher_fields(path: Path, format: str) -> dict[FairRowKey, list[FileFeedback]]:
    """Each row's wrong answer -> each teacher's feedback (or rationale), checked; the student fields are
    ``seed_import``'s."""
    source = SourceFile(path, path.name)
    items = record_list(source, json_document(source), "FAIR's JSON array of {id, question, ..., <teacher>"
                                                       f"{FAIR_SUFFIXES[format]}}}")
    suffix = FAIR_SUFFIXES[format]
    teachers = [key.removesuffix(suffix) for key in items[0].value if key.endswith(suffix) and key != ACCEPTED_FIELD]
    if not teachers:
        raise items[0].error(f"has no <teacher>{suffix} field: not a {format} file")
    read = _fair_feedback_texts if format == "fair_feedback" else _fair_rationales
    return {_row_key(item): read(item, teachers) for item in items}


def _row_key(item: Item) -> FairRowKey:
    # The question as pipeline.seeds.fair stores it (stripped); the wrong answer exactly as written.
    return FairRowKey(id_field(item, "id"), text_field(item, "question").strip(), text_field(item, "student_wrong_pred"))


def _fair_feedback_texts(item: Item, teachers: list[str]) -> list[FileFeedback]:
    return [FileFeedback(teacher, text_field(item, f"{teacher}_feedback")) for teacher in teachers]


def _fair_rationales(item: Item, teachers: list[str]) -> list[FileFeedback]:
    accepted = text_list_field(item, ACCEPTED_FIELD)
    rationales = []
    for teacher in teachers:
        key = f"{teacher}_rationale"
        value = field_value(item, key)
        if not _is_rationale(value, len(teachers)):
            raise item.error(f"must be [text, {', '.join(['score'] * (len(teachers) - 1))}] with whole-number "
                             f"or null scores, got {json.dumps(value)[:80]}", field=key)
        rationales.append(FileFeedback(teacher, value[0], tuple(value[1:]), value[0] in accepted))
    return rationales


def _is_rationale(value: Any, teachers: int) -> bool:
    """[text, one score from each other teacher]; FAIR writes whatever number a reviewer gave (0, 83...)."""
    if not (isinstance(value, list) and len(value) == teachers and isinstance(value[0], str)):
        return False
    return all(score is None or (isinstance(score, int) and not isinstance(score, bool)) for score in value[1:])


def _import_fair(path: Path, imported: dict, user) -> Run:
    """A FAIR file on its own, or joining the earlier import of its other half (see ``_fair_sibling``)."""
    rows = read_fair_teacher_fields(path, imported["format"])
    read_seed_file(path, imported["format"])  # the student fields checked (unique ids...) before anything is written
    with transaction.atomic():
        sibling, note = _fair_sibling(path.name, imported["format"], rows)
        if sibling is None:
            gather = seed_import(path=path, format=imported["format"], user=user)
            run, by_problem = _teacher_run(imported, Method.FAIR, gather, user), _attempts_by_problem(gather)
            attempts = {key: by_problem[key.external_id] for key in rows}
        else:
            run, attempts = sibling
            _join(run, imported)
        if note:
            run_log(run_id=run.pk, level=RunEvent.Level.WARNING, message=note)
        _fair_feedback_save(run, {attempts[key]: written for key, written in rows.items()})
        rationales = [written for row in rows.values() for written in row if written.accepted is not None]
        kept = {key: value for key, value in run.counts.items() if key in FAIR_RULE_COUNTS}
        _finish(run, _fair_rule_check(run, rationales) if rationales else kept)
    return run


def _fair_sibling(name: str, format: str, rows: dict[FairRowKey, list[FileFeedback]]
                  ) -> tuple[tuple[Run, dict[FairRowKey, Attempt]] | None, str]:
    """The earlier import of this round's other half, ((its teacher run, its wrong answer of each row), a note).

    The other half is a FAIR import of the other kind (feedback for a rationale file, and the other way
    round) not yet joined by one of this kind, whose wrong answers include every row of this file: same
    FAIR id, question and student_wrong_pred. The file named like this one (``X_feedback_round0.json`` for
    ``X_rationale_round0.json``) goes first; when it is about other wrong answers, the note says so.
    """
    other = "fair_rationale" if format == "fair_feedback" else "fair_feedback"
    expected = re.sub(rf"{FAIR_SUFFIXES[format]}(_round\d+\.json)$", rf"{FAIR_SUFFIXES[other]}\1", name)
    candidates = [run for run in Run.objects.filter(kind=RunKind.TEACH, config__imported__format=other)
                  if format not in run.config.get("merged", {})]
    note = ""
    for run in sorted(candidates, key=lambda run: (run.config["imported"]["file"] != expected, run.pk)):
        attempts = _attempts_by_row(run.config["gather_run_id"])
        missing = sum(key not in attempts for key in rows)
        if not missing:
            return (run, {key: attempts[key] for key in rows}), ""
        if run.config["imported"]["file"] == expected:
            note = (f"Imported {name} on its own: {missing} of its {len(rows)} rows (FAIR id, question, "
                    f"student_wrong_pred) are not in {expected}, imported as run #{run.pk}.")
    return None, note


def _attempts_by_row(gather_id: int) -> dict[FairRowKey, Attempt]:
    attempts = Attempt.objects.filter(run_id=gather_id, correct=False).select_related("problem")
    return {FairRowKey(a.problem.external_id, a.problem.question, a.raw_output): a for a in attempts}


def _join(run: Run, imported: dict) -> None:
    """Record the file joining ``run``: importing it again finds the run (``_earlier_run``)."""
    run.config = {**run.config, "merged": {**run.config.get("merged", {}),
                                           imported["format"]: {"file": imported["file"], "sha256": imported["sha256"]}}}
    run.name = f"{run.name} + {imported['file']}"
    run.save(update_fields=["config", "name"])
    run_log(run_id=run.pk, message=f"{imported['file']} joined this run: its rows are the same wrong answers.")


def _fair_feedback_save(run: Run, written_on: dict[Attempt, list[FileFeedback]]) -> None:
    """One Feedback per wrong answer and teacher: this file's half added to the teacher's Feedback there (the
    other half's import made it), else a new one in ``run``."""
    existing = {(f.attempt_id, f.teacher_name): f for f in Feedback.objects.filter(
        attempt__in=list(written_on), method=Method.FAIR, sample_index=0, teacher_name__startswith=IMPORTED)}
    added, changed, retexted = [], [], []
    for attempt, row in written_on.items():
        for written in row:
            name = f"{IMPORTED}{written.teacher}"
            feedback = existing.get((attempt.pk, name))
            if feedback is None:
                feedback = Feedback(run=run, attempt=attempt, problem_id=attempt.problem_id, method=Method.FAIR,
                                    teacher_name=name)
                added.append(feedback)
            else:
                changed.append(feedback)
            before = feedback.text
            _add_half(feedback, written)
            if before and feedback.text != before:
                retexted.append(feedback.pk)
    Feedback.objects.bulk_create(added)
    Feedback.objects.bulk_update(changed, ["fields", "text", "raw_output", "peer_scores", "peer_mean", "peer_accepted"])
    reviewed = Feedback.objects.filter(pk__in=retexted, reviews__isnull=False).distinct().count() if retexted else 0
    if reviewed:
        run_log(run_id=run.pk, level=RunEvent.Level.WARNING,
                message=f"{reviewed} rationale{'s' if reviewed != 1 else ''} already in a review queue now train on "
                        "the teacher's feedback instead (FAIR's text to train on); decisions already made stay as made.")


def _add_half(feedback: Feedback, written: FileFeedback) -> None:
    """The teacher's feedback, or its rationale with the peer scores and FAIR's verdict, into ``feedback``.

    As in a FAIR teacher run: fields {feedback, rationale}, the text to train on the feedback (the rationale
    while there is no feedback), the raw output both texts.
    """
    fields = dict(feedback.fields)
    if written.accepted is None:
        fields["feedback"] = written.text
    else:
        as_written = {f"peer {number}": score for number, score in enumerate(written.scores, start=1)}
        valid = {peer: score if teaching.valid_score(score) else None for peer, score in as_written.items()}
        fields["rationale"] = written.text
        fields.pop("peer_scores", None)
        if valid != as_written:  # keep an out-of-range score as written: the FAIR export reads these first
            fields["peer_scores"] = as_written
        feedback.peer_scores, feedback.peer_mean = valid, teaching.mean_peer_score(list(valid.values()))
        feedback.peer_accepted = written.accepted
    texts = [fields[key] for key in ("feedback", "rationale") if key in fields]
    order = ("feedback", "rationale", "peer_scores")  # as a FAIR teacher run writes them, whichever half came first
    feedback.fields = {key: fields[key] for key in order if key in fields} | fields
    feedback.text, feedback.raw_output = texts[0], "\n\n".join(texts)


def _fair_rule_check(run: Run, rationales: list[FileFeedback]) -> dict:
    """Whether FAIR's rule on the file's scores gives the file's own verdicts (correct_rationale); logged."""
    differ = [r for r in rationales if teaching.fair_accepts(list(r.scores)) != r.accepted]
    message = (f"FAIR's rule (mean of the valid peer scores > 3) gives correct_rationale's verdict on "
               f"{len(rationales) - len(differ)} of {len(rationales)} rationales")
    if differ:
        shown = "; ".join(f"{r.teacher} {list(r.scores)} {'in' if r.accepted else 'not in'} correct_rationale"
                          for r in differ[:5])
        message = f"{message}; it differs on {shown}"
    run_log(run_id=run.pk, message=message, level=RunEvent.Level.WARNING if differ else RunEvent.Level.INFO)
    return {"fair_rule_agrees": len(rationales) - len(differ), "fair_rule_differs": len(differ)}


# --- shared ----------------------------------------------------------------------------------------


def _attempts_by_problem(gather: Run) -> dict[str, Attempt]:
    """The gather run's wrong answers by problem id (the released files hold one per problem)."""
    return {attempt.problem.external_id: attempt
            for attempt in gather.attempts.filter(correct=False).select_related("problem")}


def _teacher_run(imported: dict, method: str, gather: Run, user) -> Run:
    """``imported``: the file's name, sha256 and format."""
    now = timezone.now()
    return Run.objects.create(
        kind=RunKind.TEACH, name=f"Imported {imported['file']}", status=RunStatus.SUCCEEDED, created_by=user,
        config={"imported": imported, "method": method, "gather_run_id": gather.pk},
        started_at=now, finished_at=now,
    )


def _finish(run: Run, extra_counts: dict) -> None:
    feedback = Feedback.objects.filter(run=run)
    total = feedback.count()
    run.counts = {"feedback": total, "parse_failures": feedback.filter(parse_ok=False).count(),
                  "peer_accepted": feedback.filter(peer_accepted=True).count(),
                  "per_teacher": per_teacher_counts(feedback), **extra_counts}
    run.progress_done = run.progress_total = total
    run.save(update_fields=["counts", "progress_done", "progress_total"])
