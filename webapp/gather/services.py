"""Writes for gather: launch a run, then answer every (problem, sample, round) once, scoring as answers arrive."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from django.db import transaction
from django.db.models import Count, Q

from pipeline.benchmarks.records import ProblemRecord
from pipeline.gather import GatherConfig, WorkItem, parse_gather_config, pending_round_work, sample_problem_ids
from pipeline.guidance import (
    CONTINUATION_PARAMS, GuidanceError, continued_output, guidance_kind_for_round, guided_messages, is_continuation,
    problems_needing_guidance, teacher_help_messages,
)
from pipeline.models import ChatRequest, ChatResult
from pipeline.prompts import choose_shots, student_messages, validate_prompt_config
from pipeline.scoring import SCORERS, score
from webapp.datasets.models import Dataset, Problem
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.models import Attempt
from webapp.runs.dispatch import run_enqueue
from webapp.runs.models import Run, RunEvent, RunKind, RunStatus
from webapp.runs.services import run_ask, run_create, run_execute, run_log, run_progress, run_should_stop


class GatherLaunchError(ValueError):
    """A gather run that cannot be launched; the message says which option and why."""


def selected_problems(config: GatherConfig) -> list[Problem]:
    """The problems a run answers: split, tasks, then a seeded sample; in dataset order."""
    problems = Problem.objects.filter(dataset_id=config.dataset_id).order_by("position")
    if config.split != "all":
        problems = problems.filter(split=config.split)
    if config.tasks:
        problems = problems.filter(task__in=config.tasks)
    problems = list(problems)
    chosen = set(sample_problem_ids([p.external_id for p in problems], size=config.sample_size, seed=config.sample_seed))
    return [p for p in problems if p.external_id in chosen]


def _endpoint(endpoint_id: int | None, role: str) -> ModelEndpoint:
    endpoint = ModelEndpoint.objects.filter(pk=endpoint_id, is_active=True).first()
    if endpoint is None:
        raise GatherLaunchError(f"no active model endpoint #{endpoint_id} for the {role}")
    if role not in endpoint.roles:
        raise GatherLaunchError(f"{endpoint.name} may not play the {role} (its roles: {', '.join(endpoint.roles)})")
    return endpoint


def gather_launch(*, user, data: dict, name: str = "") -> Run:
    """Check a gather configuration against the database, record the run and queue it."""
    try:
        config = parse_gather_config(data)
    except ValueError as error:
        raise GatherLaunchError(str(error)) from None
    dataset = Dataset.objects.filter(pk=config.dataset_id).first()
    if dataset is None:
        raise GatherLaunchError(f"no dataset #{config.dataset_id}")
    student = _endpoint(config.student_endpoint_id, "student")
    if config.execution == "gpu_queue":
        from webapp.gather.gpu_queue import gpu_queue_refusal  # gpu_queue builds on this module's helpers

        if refusal := gpu_queue_refusal(config, student):
            raise GatherLaunchError(refusal)
    if config.teacher_endpoint_id is not None:
        _endpoint(config.teacher_endpoint_id, "teacher")
    if config.scorer and config.scorer not in SCORERS:
        raise GatherLaunchError(f"unknown scorer {config.scorer!r}; known: {', '.join(sorted(SCORERS))}")
    problems = selected_problems(config)
    if not problems:
        raise GatherLaunchError(f"{dataset.name} has no {config.split} problems matching this filter")
    pool_size = Problem.objects.filter(dataset=dataset, split="train").count()
    try:
        validate_prompt_config(config.prompt, train_pool_size=pool_size)
    except ValueError as error:
        raise GatherLaunchError(str(error)) from None
    with transaction.atomic():
        run = run_create(kind=RunKind.GATHER, name=name or f"{student.name} on {dataset.name}", config=config.as_json(),
                         user=user, total=len(problems) * config.samples_per_problem)
        run_enqueue(run)
    return run


@dataclass
class GatherContext:
    """What one execution of a run needs, loaded once."""

    run: Run
    config: GatherConfig
    problems: dict[int, Problem]
    records: dict[int, ProblemRecord]
    pool: list[ProblemRecord]
    student: ModelEndpoint
    teacher: ModelEndpoint | None
    scorer: str


def _context(run: Run) -> GatherContext:
    config = parse_gather_config(run.config)
    problems = {p.pk: p for p in selected_problems(config)}
    dataset = Dataset.objects.get(pk=config.dataset_id)
    pool = [p.as_record() for p in Problem.objects.filter(dataset=dataset, split="train").order_by("position")]
    teacher = ModelEndpoint.objects.get(pk=config.teacher_endpoint_id) if config.teacher_endpoint_id else None
    return GatherContext(run=run, config=config, problems=problems, records={k: p.as_record() for k, p in problems.items()},
                         pool=pool, student=ModelEndpoint.objects.get(pk=config.student_endpoint_id), teacher=teacher,
                         scorer=config.scorer or dataset.scorer)


def gather_execute(*, run_id: int) -> None:
    """Run (or resume) a gather run; answers already recorded are not asked for again."""
    run_execute(run_id=run_id, work=_gather)


def _gather(run: Run) -> dict | None:
    context = _context(run)
    run_log(run_id=run.pk, message=f"Asking {context.student.name} about {len(context.problems)} problems.")
    if context.config.execution == "gpu_queue":
        from webapp.gather.gpu_queue import gpu_queue_start  # gpu_queue builds on this module's helpers

        gpu_queue_start(context)  # returns once the batches are sent; the last reply finishes the run
        return None
    outcome = _answer_all_rounds(context)
    _report(context)
    return outcome


def _done(run_id: int) -> set[tuple[int, int, int]]:
    return set(Attempt.objects.filter(run_id=run_id).values_list("problem_id", "sample_index", "round"))


def _answer_all_rounds(context: GatherContext) -> dict:
    config, failures = context.config, []
    work = pending_round_work(context.problems, round=0, samples=config.samples_per_problem, done=_done(context.run.pk))
    if _answer(context, work, failures) == "cancelled":
        return {"status": RunStatus.CANCELLED}
    for round_number in range(1, config.guidance.max_resample + 1):
        attempts = [a.as_record() for a in Attempt.objects.filter(run=context.run).select_related("problem")]
        needing = set(problems_needing_guidance(attempts, config.guidance))
        ids = [pk for pk, p in context.problems.items() if p.external_id in needing]
        if not ids:
            break
        kind = guidance_kind_for_round(config.guidance, round_number)
        work = pending_round_work(ids, round=round_number, samples=config.guidance.samples_per_round,
                                  done=_done(context.run.pk), guidance=kind)
        Run.objects.filter(pk=context.run.pk).update(progress_total=context.run.progress_total + sum(
            len(item.sample_indexes) for item in work))
        context.run.refresh_from_db(fields=["progress_total"])
        run_log(run_id=context.run.pk, message=f"Round {round_number} ({kind}): {len(ids)} problems need guidance.")
        if _answer(context, work, failures) == "cancelled":
            return {"status": RunStatus.CANCELLED}
    if failures:
        return {"status": RunStatus.FAILED, "error": (
            f"{len(failures)} requests failed and were not recorded (last reason: {failures[-1]}). "
            "Resume the run to ask for them again; the answers already recorded are kept.")}
    return {"status": RunStatus.SUCCEEDED}


def _chunk_size(context: GatherContext) -> int:
    return max(4 * context.student.max_concurrency, 16)


def _answer(context: GatherContext, work: Sequence[WorkItem], failures: list[str]) -> str:
    size = _chunk_size(context)
    for start in range(0, len(work), size):
        if run_should_stop(run_id=context.run.pk):
            run_log(run_id=context.run.pk, message="Cancelled; answers recorded so far are kept.")
            return "cancelled"
        chunk, requests = _requests(context, work[start:start + size])
        results = run_ask(run_id=context.run.pk, endpoint=context.student, requests=requests,
                          use_cache=context.config.use_cache)
        _store(context, chunk, requests, results, failures)
        _report(context)
    return "done"


def _requests(context: GatherContext, items: Sequence[WorkItem]) -> tuple[list[WorkItem], list[ChatRequest]]:
    """Requests for the items that can be asked; a guidance kind a problem cannot take is logged and skipped."""
    kept, requests = [], []
    for item in items:
        try:
            requests.append(_request(context, item))
        except GuidanceError as error:
            external_id = context.records[item.problem_id].external_id
            run_log(run_id=context.run.pk, level=RunEvent.Level.WARNING,
                    message=f"problem {external_id}: no {item.guidance} guidance ({error})")
            continue
        kept.append(item)
    return kept, requests


def _request(context: GatherContext, item: WorkItem) -> ChatRequest:
    record = context.records[item.problem_id]
    shots = choose_shots(record, context.pool, context.config.prompt) if context.config.prompt.k_shots else []
    messages = student_messages(record, context.config.prompt, shots)
    params = dict(context.config.decoding)
    if item.guidance:
        messages = _guided(context, item, record, messages)
        if is_continuation(messages):  # state reset: the model goes on from the gold solution's prefix
            params.update(CONTINUATION_PARAMS)
    return ChatRequest(messages=messages, params=params, n=len(item.sample_indexes),
                       sample_index=item.sample_indexes[0] + 1000 * item.round, key=f"{item.problem_id}:{item.round}")


def _guided(context: GatherContext, item: WorkItem, record: ProblemRecord, messages: list[dict]) -> list[dict]:
    guidance = context.config.guidance
    wrong = (Attempt.objects.filter(run=context.run, problem_id=item.problem_id, correct=False)
             .order_by("-round", "sample_index").first())
    previous = wrong.as_record() if wrong else None
    correction = None
    if item.guidance == "teacher_help" and previous is not None and context.teacher is not None:
        teacher_request = ChatRequest(messages=teacher_help_messages(record, previous), key=f"teacher:{item.problem_id}")
        [answer] = run_ask(run_id=context.run.pk, endpoint=context.teacher, requests=[teacher_request],
                           use_cache=context.config.use_cache)
        correction = answer.texts[0] if answer.ok else None
    return guided_messages(record, messages, item.guidance, guidance, previous_wrong=previous,
                           teacher_correction=correction, preset=context.config.prompt.preset)


def _store(context: GatherContext, chunk: Sequence[WorkItem], requests: Sequence[ChatRequest],
           results: Sequence[ChatResult], failures: list[str]) -> None:
    rows = []
    for item, request, result in zip(chunk, requests, results, strict=True):
        if not result.ok:
            failures.append(result.error or "no answer")
            run_log(run_id=context.run.pk, level=RunEvent.Level.WARNING,
                    message=f"problem {context.records[item.problem_id].external_id}, round {item.round}: {result.error}")
            continue
        rows.extend(_attempt_rows(context, item, request, result))
    Attempt.objects.bulk_create(rows, ignore_conflicts=True)


def _attempt_rows(context: GatherContext, item: WorkItem, request: ChatRequest, result: ChatResult) -> list[Attempt]:
    problem, record = context.problems[item.problem_id], context.records[item.problem_id]
    prompt = json.dumps(list(request.messages), ensure_ascii=False)
    rows = []
    continuing = is_continuation(list(request.messages))
    for sample_index, generated in zip(item.sample_indexes, result.texts):
        text = continued_output(list(request.messages), generated) if continuing else generated
        verdict = score(context.scorer, text, record.gold_answer, record.choices)
        rows.append(Attempt(
            run=context.run, problem=problem, endpoint=context.student, model_name=context.student.model_name,
            sample_index=sample_index, round=item.round, guidance=item.guidance, prompt=prompt, raw_output=text,
            extracted=verdict.extracted, correct=verdict.correct, scorer=context.scorer,
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens // max(len(result.texts), 1),
            latency_ms=round(result.latency_s * 1000),
        ))
    return rows


def _report(context: GatherContext) -> None:
    """Progress and per-task accuracy from what is recorded (so a resumed run reports the truth)."""
    attempts = Attempt.objects.filter(run=context.run)
    per_task = attempts.values("problem__task").annotate(total=Count("id"), right=Count("id", filter=Q(correct=True)))
    counts = {
        "correct": attempts.filter(correct=True).count(),
        "wrong": attempts.filter(correct=False).count(),
        "per_task": {row["problem__task"] or "all": [row["right"], row["total"]] for row in per_task},
    }
    run_progress(run_id=context.run.pk, done=counts["correct"] + counts["wrong"], counts=counts)
