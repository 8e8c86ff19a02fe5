"""Writes for exams: launch an exam run, then answer every (problem, sample) once, vote, and record the results.

Resumable like a gather run: a sample already recorded is never asked for again, a killed worker's run is
queued again and carries on, and the final answers are recomputed from the recorded samples each time.
"""

from __future__ import annotations

from typing import Sequence

from django.db import transaction

from pipeline.estimates import NOTHING, estimate_requests
from pipeline.exams.config import ExamConfig, parse_exam_config
from pipeline.exams.prompts import assistant_messages, plain_messages, salam_messages
from pipeline.exams.stats import Vote, majority_vote
from pipeline.gather import WorkItem, pending_round_work
from pipeline.models import ChatRequest
from pipeline.prompts import PromptError, choose_shots, validate_prompt_config
from webapp.datasets.models import Dataset, Problem
from webapp.exams import lbt, salam
from webapp.exams.context import (
    GUARD_SETTINGS, ExamContext, ExamLaunchError, active_endpoint, answers_upsert, attempt_rows, exam_config, failed,
    failure_outcome, load_context, report, selected_problems, train_pool,
)
from webapp.exams.guard import contamination_check
from webapp.exams.models import ExamAnswer
from webapp.gather.models import Attempt
from webapp.runs.dispatch import run_enqueue
from webapp.runs.models import Run, RunKind, RunStatus
from webapp.runs.services import run_ask, run_create, run_execute, run_log, run_should_stop

__all__ = ["ExamLaunchError", "exam_estimate", "exam_execute", "exam_launch"]


# --- launch ------------------------------------------------------------------------------------------

def _checked(data: dict) -> tuple[ExamConfig, dict, list[Problem]]:
    """The parsed config, the guard settings and the exam's problems; ExamLaunchError saying what is wrong."""
    if not isinstance(data, dict):
        raise ExamLaunchError("the exam configuration must be a JSON object")
    guard = {name: data.get(name, default) for name, default in GUARD_SETTINGS.items()}
    if not isinstance(guard["near_duplicates"], bool):
        raise ExamLaunchError(f"near_duplicates must be true or false, got {guard['near_duplicates']!r}")
    try:
        config = parse_exam_config({key: value for key, value in data.items() if key not in GUARD_SETTINGS})
    except ValueError as error:
        raise ExamLaunchError(str(error)) from None
    datasets = Dataset.objects.in_bulk(config.dataset_ids)
    missing = [pk for pk in config.dataset_ids if pk not in datasets]
    if missing:
        raise ExamLaunchError(f"no dataset #{missing[0]}")
    active_endpoint(config.student_endpoint_id, "student")
    if config.execution != "http":
        raise ExamLaunchError("exams ask the student over its HTTP API; execution gpu_queue is for gather runs")
    _check_prompt(config)
    if config.mode == "salam":
        salam.salam_check(config)
    problems = selected_problems(config)
    if not problems:
        names = ", ".join(datasets[pk].name for pk in config.dataset_ids)
        raise ExamLaunchError(f"{names} {'has' if len(datasets) == 1 else 'have'} no {config.split} problems "
                              "matching this filter")
    if config.mode == "lbt":
        problems = lbt.lbt_check(config, problems)
    return config, guard, problems


def _check_prompt(config: ExamConfig) -> None:
    smallest = min(Problem.objects.filter(dataset_id=pk, split="train").count() for pk in config.dataset_ids)
    try:
        validate_prompt_config(config.prompt, train_pool_size=smallest)
    except PromptError as error:
        raise ExamLaunchError(f"prompt: {error}") from None


def exam_launch(*, user, data: dict, name: str = "") -> Run:
    """Check an exam configuration against the database, record the run and queue it."""
    config, guard, problems = _checked(data)
    student = active_endpoint(config.student_endpoint_id, "student")
    label = ", ".join(sorted({p.dataset.name for p in problems}))
    total = lbt.lbt_total(config, problems) if config.mode == "lbt" else len(problems) * config.samples_per_problem
    with transaction.atomic():
        run = run_create(kind=RunKind.EXAM, name=name or f"{config.mode} exam of {student.name} on {label}",
                         config={**config.as_json(), **guard}, user=user, total=total)
        run_enqueue(run)
    return run


def exam_estimate(data: dict) -> dict:
    """Problems, answers, requests, tokens and dollars the exam would take (prompt tokens from characters)."""
    config, _, problems = _checked(data)
    max_tokens = int(config.decoding.get("max_tokens", 256))
    if config.mode == "lbt":
        conversations = lbt.lbt_conversations(config, problems)
        samples = config.lbt.repetitions
    else:
        pools = {pk: train_pool(pk) for pk in config.dataset_ids} if config.prompt.style == "few_shot" else {}
        records = [(p.as_record(), pools.get(p.dataset_id, [])) for p in problems]
        conversations = [plain_messages(record, config.prompt, choose_shots(record, pool, config.prompt))
                         for record, pool in records]
        samples = config.samples_per_problem
    student = _estimate(active_endpoint(config.student_endpoint_id, "student"), conversations, samples, max_tokens)
    assistant = NOTHING
    if config.mode == "salam" and config.salam.guideline:
        assistant = _estimate(active_endpoint(config.salam.assistant_endpoint_id, "assistant"),
                              [assistant_messages(p.as_record()) for p in problems], 1, max_tokens)
    return {"problems": len(problems), "answers": len(conversations) * samples, "assistant_requests": assistant.requests,
            **(student + assistant).as_dict()}


def _estimate(endpoint, conversations: list, samples: int, max_tokens: int):
    return estimate_requests(conversations, samples=samples, max_tokens=max_tokens,
                             price_in_per_1k=float(endpoint.price_in_per_1k), price_out_per_1k=float(endpoint.price_out_per_1k))


# --- execute -----------------------------------------------------------------------------------------

def exam_execute(*, run_id: int) -> None:
    """Run (or resume) an exam run; samples already recorded are not asked for again."""
    run_execute(run_id=run_id, work=_examine)


def _examine(run: Run) -> dict:
    context = _start(run)
    outcome = lbt.lbt_answer_all(context) if context.config.mode == "lbt" else _answer_all(context)
    report(context)
    return outcome


def _start(run: Run) -> ExamContext:
    config = exam_config(run.config)
    problems = selected_problems(config)
    if config.mode == "lbt":
        problems = lbt.with_rationales(config, problems, run_id=run.pk)
    context = load_context(run, problems)
    context.contamination = contamination_check(run_id=run.pk, student_id=context.student.pk,
                                                problems=context.problems.values(), near=context.near_duplicates)
    excluded = [pk for pk in context.problems if context.excluded(pk)]
    if excluded:
        run_log(run_id=run.pk, message=f"{len(excluded)} contaminated problems are excluded from the results.")
    run_log(run_id=run.pk, message=f"Examining {context.student.name} on {len(context.problems)} problems "
                                   f"({context.config.mode}).")
    return context


def _answer_all(context: ExamContext) -> dict:
    """Plain and SALAM: every missing sample, a chunk at a time; the final answers as each chunk lands."""
    config, failures = context.config, []
    done = set(Attempt.objects.filter(run=context.run).values_list("problem_id", "sample_index", "round"))
    work = pending_round_work(context.problems, round=0, samples=config.samples_per_problem, done=done)
    memory = salam.memory_load(config) if config.mode == "salam" and work else None
    for start in range(0, len(work), context.chunk_size):
        if run_should_stop(run_id=context.run.pk):
            run_log(run_id=context.run.pk, message="Cancelled; answers recorded so far are kept.")
            return {"status": RunStatus.CANCELLED}
        chunk = work[start:start + context.chunk_size]
        _answer_chunk(context, chunk, memory, failures)
        voted_answers_save(context, [item.problem_id for item in chunk])
        report(context)
    voted_answers_save(context)  # every problem: also those a killed worker had not voted on
    return failure_outcome(failures)


def _answer_chunk(context: ExamContext, chunk: Sequence[WorkItem], memory, failures: list[str]) -> None:
    guidance = {}
    if memory is not None:
        guidance = salam.guidance_for(context, memory, [context.problems[i.problem_id] for i in chunk], failures)
        chunk = [item for item in chunk if item.problem_id in guidance]
    requests = [_request(context, item, guidance.get(item.problem_id)) for item in chunk]
    results = run_ask(run_id=context.run.pk, endpoint=context.student, requests=requests, use_cache=context.config.use_cache)
    rows = []
    for item, request, result in zip(chunk, requests, results, strict=True):
        problem = context.problems[item.problem_id]
        if failed(context, result, f"problem {problem.external_id}", failures):
            continue
        metadata = guidance[item.problem_id].metadata() if item.problem_id in guidance else {}
        rows += attempt_rows(context, problem, request, result, sample_indexes=item.sample_indexes, metadata=metadata)
    Attempt.objects.bulk_create(rows, ignore_conflicts=True)


def _request(context: ExamContext, item: WorkItem, guidance) -> ChatRequest:
    problem = context.problems[item.problem_id]
    record, prompt = context.record(problem), context.config.prompt
    if guidance is not None:
        messages = salam_messages(record, prompt, guideline=guidance.guideline, cases=guidance.cases)
    else:
        messages = plain_messages(record, prompt, context.shots(problem))
    return ChatRequest(messages=messages, params=dict(context.config.decoding), n=len(item.sample_indexes),
                       sample_index=item.sample_indexes[0], key=str(item.problem_id))


def voted_answers_save(context: ExamContext, problem_ids: Sequence[int] | None = None) -> None:
    """Each problem's final answer from its recorded samples (once all are in): the vote, or sample 0's."""
    samples: dict[int, list[Attempt]] = {}
    attempts = Attempt.objects.filter(run=context.run, round=0)
    if problem_ids is not None:
        attempts = attempts.filter(problem_id__in=list(problem_ids))
    attempts = attempts.only("id", "problem_id", "sample_index", "extracted", "correct", "metadata").order_by(
        "problem_id", "sample_index")
    for attempt in attempts:
        samples.setdefault(attempt.problem_id, []).append(attempt)
    rows = []
    for problem_id, answers in samples.items():
        if len(answers) < context.config.samples_per_problem:
            continue
        vote = _vote(context, answers)
        chosen = answers[vote.sample_index]
        rows.append(ExamAnswer(
            run=context.run, problem_id=problem_id, attempt=chosen, answer=vote.answer, correct=vote.correct,
            votes=vote.votes, samples=len(answers), guidance=chosen.metadata.get("guidance", ""),
            retrieved=chosen.metadata.get("retrieved", []), contamination=context.contamination.get(problem_id, []),
            excluded=context.excluded(problem_id)))
    answers_upsert(rows)


def _vote(context: ExamContext, answers: list[Attempt]) -> Vote:
    if context.config.majority_vote:
        return majority_vote([(a.extracted, a.correct) for a in answers])
    first = answers[0]
    return Vote(first.extracted, first.correct, 1, 1, 0)

