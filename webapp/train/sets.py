"""Building training sets: approved reviews (or a gather run, or a file) become examples, files and rows at once.

Every example keeps where it came from (feedback, mistake, problem, approving reviews), so an exam answer can
be traced back through the checkpoint and training run to the reviews and the mistake. A set is written
whole or not at all: the JSONL files go to a fresh folder and the rows in one transaction; a failure
removes both.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.db import transaction

from pipeline.exports import ExportError
from pipeline.prompts import PromptConfig
from pipeline.training import data as builders
from pipeline.training.imports import TrainingFileError, read_training_file
from webapp.datasets.models import Problem
from webapp.gather.models import Attempt
from webapp.review.models import Decision, Review, ReviewQueue
from webapp.review.selectors import APPROVAL_RULES, approved_feedback, approved_item
from webapp.runs.models import Run, RunKind
from webapp.train.models import Target, TrainingExample, TrainingSet

QUEUE_TARGETS = {  # target -> (methods it trains on, builder over approved items)
    Target.SALAM_ASSISTANT: (("salam",), builders.salam_assistant_examples),
    Target.LEMA_STUDENT: (("lema",), builders.lema_student_examples),
    Target.FAIR_STUDENT: (("fair",), builders.fair_student_examples),
    Target.DPO: (("lema", "gsi", "fair"), builders.dpo_pairs_from_items),
}


class TrainingSetError(ValueError):
    """A set that cannot be built; the message says why."""


def sets_dir() -> Path:
    return Path(settings.ERRATA_ARTIFACTS_DIR) / "training-sets"


def training_set_from_queue(*, name: str, target: str, queue: ReviewQueue, rule: str = "majority",
                            validation_share: float = 0.1, seed: int = 0, cot_ratio: float = 0.0, user=None) -> TrainingSet:
    """A set from a review queue's approved items, shaped for ``target``."""
    if target not in QUEUE_TARGETS:
        raise TrainingSetError(f"a review queue builds {', '.join(QUEUE_TARGETS)} sets, not {target!r}")
    if rule not in APPROVAL_RULES:
        raise TrainingSetError(f"unknown approval rule {rule!r}; known: {', '.join(APPROVAL_RULES)}")
    methods, build = QUEUE_TARGETS[target]
    approved = approved_feedback(queue=queue, rule=rule)
    usable = [(f, text) for f, text in approved if f.method in methods]
    if not usable:
        raise TrainingSetError(f"queue {queue.name!r} has no approved {' or '.join(methods)} feedback yet")
    approvers = _approving_reviews(queue, [f.pk for f, _ in usable])
    items = [approved_item(feedback, text) for feedback, text in usable]
    cot = _cot_problems([f for f, _ in usable]) if target == Target.LEMA_STUDENT and cot_ratio > 0 else []
    try:
        built = (build(items, [record for _, record in cot], cot_ratio, seed) if cot else build(items))
    except ExportError as error:
        raise TrainingSetError(str(error)) from None
    examples = []
    for example in built.examples:
        index = example.source.get("index")
        if example.part == "cot":  # index into the chain-of-thought problems
            source = {"problem": cot[index][0]}
        else:
            feedback = usable[index][0]
            source = {"feedback": feedback.pk, "attempt": feedback.attempt_id, "problem": feedback.problem_id,
                      "reviews": approvers.get(feedback.pk, [])}
        examples.append(replace(example, source=source))
    skipped = {**built.skipped, **({"approved items of other methods": len(approved) - len(usable)}
                                   if len(approved) > len(usable) else {})}
    if not examples:
        raise TrainingSetError(f"none of the approved items fits a {target} set: {skipped}")
    return _save(name=name, target=target, examples=examples, user=user, queue=queue,
                 source={"queue": queue.pk, "rule": rule, "skipped": skipped},
                 options={"validation_share": validation_share, "seed": seed, "cot_ratio": cot_ratio})


def training_set_from_gather(*, name: str, run: Run, validation_share: float = 0.1, seed: int = 0, user=None,
                             as_asked: bool = True) -> TrainingSet:
    """GSI: every correct sample of a gather run becomes the next iteration's data.

    ``as_asked``: each question is put as the gather run asked it (its prompt settings), so the trained
    model answers in the format it will be asked in again; else the bare question.
    """
    if run.kind != RunKind.GATHER:
        raise TrainingSetError(f"run #{run.pk} is a {run.kind} run; GSI iterations are built from gather runs")
    correct = Attempt.objects.filter(run=run, correct=True).select_related("problem").order_by("id")
    prompt = _gather_prompt(run) if as_asked else None
    examples = []
    for attempt in correct.iterator(chunk_size=2000):
        source = {"attempt": attempt.pk, "problem": attempt.problem_id}
        pairs = [(attempt.problem.as_record(), attempt.as_record())]
        built = builders.gsi_iteration_examples(pairs, prompt=prompt).examples
        examples += [replace(example, source=source) for example in built]
    if not examples:
        raise TrainingSetError(f"gather run #{run.pk} has no correct answers to learn from")
    return _save(name=name, target=Target.GSI_ITERATION, examples=_unique(examples), user=user,
                 source={"gather_run": run.pk},
                 options={"validation_share": validation_share, "seed": seed, "as_asked": as_asked})


def _gather_prompt(run: Run) -> PromptConfig:
    try:
        return PromptConfig.from_dict((run.config or {}).get("prompt", {}))
    except ValueError as error:
        raise TrainingSetError(f"gather run #{run.pk} has prompt settings Errata cannot read: {error}") from None


def training_set_from_file(*, name: str, path: Path, validation_share: float = 0.1, seed: int = 0,
                           user=None) -> TrainingSet:
    """A set from a file: chat JSONL, LEMA {prompt, completion}, SALAM finetune data, or DPO pairs."""
    try:
        examples, kind = read_training_file(path)
    except TrainingFileError as error:
        raise TrainingSetError(str(error)) from None
    target = Target.DPO if kind == "dpo" else Target.IMPORTED
    return _save(name=name, target=target, examples=examples, user=user,
                 source={"file": Path(path).name, "format": kind},
                 options={"validation_share": validation_share, "seed": seed})


def _approving_reviews(queue: ReviewQueue, feedback_ids: list[int]) -> dict[int, list[int]]:
    reviews = Review.objects.filter(queue=queue, feedback_id__in=feedback_ids,
                                    decision__in=[Decision.APPROVE, Decision.EDIT])
    approvers: dict[int, list[int]] = defaultdict(list)
    for feedback_id, review_id in reviews.order_by("id").values_list("feedback_id", "id"):
        approvers[feedback_id].append(review_id)
    return approvers


def _cot_problems(feedback: list) -> list[tuple[int, object]]:
    """LEMA's plain chain-of-thought data: (problem id, record) of train problems of the same datasets with a rationale."""
    datasets = {f.problem.dataset_id for f in feedback}
    problems = Problem.objects.filter(dataset_id__in=datasets, split="train").exclude(gold_rationale="").order_by("id")
    return [(problem.pk, problem.as_record()) for problem in problems.iterator(chunk_size=2000)]


def _unique(examples: list) -> list:
    """Identical examples (the same rationale approved twice, say) train once; the first one's source is kept."""
    seen, kept = set(), []
    for example in examples:
        record = example.to_json()
        record.pop("source", None)
        key = json.dumps(record, sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(example)
    return kept


def _save(*, name: str, target: str, examples: list, user, source: dict, options: dict, queue=None) -> TrainingSet:
    if not examples:
        raise TrainingSetError("no examples to train on")
    train, validation = builders.split_examples(examples, validation_share=options["validation_share"],
                                                seed=options["seed"])
    counts = builders.data_summary(train, validation)
    folder = None
    try:
        with transaction.atomic():
            training_set = TrainingSet.objects.create(name=name[:200], target=target, source=source, options=options,
                                                      counts=counts, queue=queue, created_by=user, train_file="")
            folder = sets_dir() / f"set-{training_set.pk}"
            folder.mkdir(parents=True, exist_ok=True)
            training_set.train_file = str(folder / "train.jsonl")
            builders.write_jsonl(train, training_set.train_file)
            if validation:
                training_set.validation_file = str(folder / "validation.jsonl")
                builders.write_jsonl(validation, training_set.validation_file)
            training_set.save(update_fields=["train_file", "validation_file"])
            TrainingExample.objects.bulk_create(
                _rows(training_set, [("train", e) for e in train] + [("validation", e) for e in validation]),
                batch_size=2000)
    except BaseException:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return training_set


def _rows(training_set: TrainingSet, examples: list) -> list[TrainingExample]:
    rows = []
    for position, (split, example) in enumerate(examples):
        source = example.source or {}
        record = example.to_json()
        record.pop("source", None)
        rows.append(TrainingExample(
            training_set=training_set, position=position, split=split, part=getattr(example, "part", "main"),
            data=record, feedback_id=source.get("feedback"), attempt_id=source.get("attempt"),
            reviews=list(source.get("reviews") or [])))
    return rows
