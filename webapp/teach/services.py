"""Writes for teach: launch a teacher run, then get every teacher's feedback on every mistake once, checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from django.db import transaction

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.estimates import estimate_requests, within_budget
from pipeline.models import ChatRequest, ChatResult
from pipeline.teach_config import TeachConfig, parse_teach_config
from webapp.datasets.models import Problem
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.models import Attempt
from webapp.runs.dispatch import run_enqueue
from webapp.runs.models import Run, RunEvent, RunKind, RunStatus
from webapp.runs.services import run_ask, run_create, run_execute, run_log, run_progress, run_should_stop
from webapp.teach import methods
from webapp.teach.models import Feedback
from webapp.teach.templates_store import template_for

CHUNK = 16  # mistakes per step: the budget and cancel are checked between steps


class TeachLaunchError(ValueError):
    """A teacher run that cannot be launched; the message says which option and why."""


@dataclass
class Source:
    """One thing to teach from: a mistake (with its problem), or for LbT a bare problem."""

    problem: Problem
    record: ProblemRecord
    attempt: Attempt | None
    wrong: AttemptRecord | None


def _sources(config: TeachConfig) -> list[Source]:
    if config.method == "lbt":
        problems = Problem.objects.filter(dataset_id=config.dataset_id, split=config.split).order_by("position")
        return [Source(p, p.as_record(), None, None) for p in problems]
    mistakes = Attempt.objects.filter(correct=False).select_related("problem", "endpoint").order_by("problem__position", "id")
    mistakes = mistakes.filter(run_id=config.gather_run_id) if config.gather_run_id else mistakes.filter(pk__in=config.attempt_ids)
    return [Source(a.problem, a.problem.as_record(), a, a.as_record()) for a in mistakes]


def _teachers(config: TeachConfig) -> list[ModelEndpoint]:
    found = {e.pk: e for e in ModelEndpoint.objects.filter(pk__in=config.teacher_endpoint_ids, is_active=True)}
    missing = [pk for pk in config.teacher_endpoint_ids if pk not in found]
    if missing:
        raise TeachLaunchError(f"no active model endpoint #{missing[0]}")
    for teacher in found.values():
        if "teacher" not in teacher.roles:
            raise TeachLaunchError(f"{teacher.name} may not play the teacher (its roles: {', '.join(teacher.roles)})")
    return [found[pk] for pk in config.teacher_endpoint_ids]


def teach_estimate(config: TeachConfig) -> dict:
    """Requests, tokens and dollars the run will take (prompt tokens estimated from characters)."""
    sources, teachers = _sources(config), _teachers(config)
    max_tokens = int(config.decoding.get("max_tokens", 512))
    total = None
    for teacher in teachers:
        conversations = [m for source in sources for m in methods.writer_messages(config, source, None)]
        per = len(conversations) and methods.requests_per_writer(config.method, len(teachers))
        estimate = estimate_requests(conversations * max(per, 1) if conversations else [], samples=config.samples,
                                     max_tokens=max_tokens, price_in_per_1k=float(teacher.price_in_per_1k),
                                     price_out_per_1k=float(teacher.price_out_per_1k))
        total = estimate if total is None else total + estimate
    return {"sources": len(sources), "teachers": len(teachers), **(total.as_dict() if total else {})}


def teach_launch(*, user, data: dict, name: str = "") -> Run:
    try:
        config = parse_teach_config(data)
    except ValueError as error:
        raise TeachLaunchError(str(error)) from None
    teachers, sources = _teachers(config), _sources(config)
    if not sources:
        raise TeachLaunchError("nothing to teach from: the source has no mistakes" if config.method != "lbt"
                               else "the dataset has no problems in that split")
    label = ", ".join(t.name for t in teachers)
    with transaction.atomic():
        run = run_create(kind=RunKind.TEACH, name=name or f"{config.method} feedback by {label}", config=config.as_json(),
                         user=user, total=len(sources) * len(teachers) * config.samples)
        run_enqueue(run)
    return run


def teach_execute(*, run_id: int) -> None:
    """Run (or resume) a teacher run: feedback already recorded is not asked for again."""
    run_execute(run_id=run_id, work=lambda run: _teach(run, parse_teach_config(run.config)))


def _pin_templates(run: Run, config: TeachConfig) -> dict:
    """The exact template versions this run uses, recorded in its config (resumes use the same)."""
    versions = dict(run.config.get("template_versions") or {})
    for name in methods.TEMPLATES[config.method]:
        versions.setdefault(name, template_for(name, versions.get(name)).version)
    Run.objects.filter(pk=run.pk).update(config={**run.config, "template_versions": versions})
    return {name: template_for(name, version) for name, version in versions.items()}


def _teach(run: Run, config: TeachConfig) -> dict:
    templates = _pin_templates(run, config)
    sources, teachers = _sources(config), _teachers(config)
    failures: list[str] = []
    for start in range(0, len(sources), CHUNK):
        if run_should_stop(run_id=run.pk):
            return {"status": RunStatus.CANCELLED}
        chunk = sources[start:start + CHUNK]
        if not _budget_allows(run, config, chunk, teachers):
            message = f"Stopped at the budget of ${config.budget_usd:.2f}; the feedback so far is kept."
            run_log(run_id=run.pk, message=message, level=RunEvent.Level.WARNING)
            return {"status": RunStatus.CANCELLED, "error": message}
        _teach_chunk(run, config, chunk, teachers, templates, failures)
        _report(run)
    if failures:
        return {"status": RunStatus.FAILED, "error": f"{len(failures)} requests failed (last reason: {failures[-1]}). "
                                                     "Resume the run to ask again; the feedback so far is kept."}
    return {"status": RunStatus.SUCCEEDED}


def _budget_allows(run: Run, config: TeachConfig, chunk: Sequence[Source], teachers) -> bool:
    if config.budget_usd is None:
        return True
    spent = float(Run.objects.values_list("cost", flat=True).get(pk=run.pk))
    conversations = [m for source in chunk for m in methods.writer_messages(config, source, None)]
    next_cost = sum(estimate_requests(conversations, samples=config.samples, max_tokens=int(config.decoding.get("max_tokens", 512)),
                                      price_in_per_1k=float(t.price_in_per_1k), price_out_per_1k=float(t.price_out_per_1k)).cost
                    for t in teachers)
    return within_budget(budget=config.budget_usd, spent=spent, next_cost=next_cost)


def _teach_chunk(run, config, chunk, teachers, templates, failures) -> None:
    done = set(Feedback.objects.filter(run=run).values_list("problem_id", "attempt_id", "teacher_name", "sample_index"))
    for teacher in teachers:
        todo = [s for s in chunk if any((s.problem.pk, s.attempt.pk if s.attempt else None, teacher.name, i) not in done
                                        for i in range(config.samples))]
        if not todo:
            continue
        requests = [ChatRequest(messages=m, params=dict(config.decoding), n=config.samples, key=f"{s.problem.pk}:{k}")
                    for s in todo for k, m in enumerate(methods.writer_messages(config, s, templates))]
        results = run_ask(run_id=run.pk, endpoint=teacher, requests=requests, use_cache=config.use_cache)
        per_source = len(requests) // len(todo)
        for index, source in enumerate(todo):
            answers = results[index * per_source:(index + 1) * per_source]
            _store(run, config, source, teacher, requests[index * per_source], answers, templates, failures)
    if config.method == "fair":
        methods.fair_peer_review(run, config, chunk, teachers, templates, failures)
    if config.method == "gsi":
        methods.gsi_student_revisions(run, config, chunk, failures)


def _store(run, config, source: Source, teacher, request: ChatRequest, answers: Sequence[ChatResult], templates, failures) -> None:
    if not all(answer.ok for answer in answers):
        reason = next(answer.error for answer in answers if not answer.ok)
        failures.append(reason)
        run_log(run_id=run.pk, level=RunEvent.Level.WARNING, message=f"{teacher.name} on problem {source.record.external_id}: {reason}")
        return
    rows = []
    for sample in range(config.samples):
        texts = [answer.texts[sample] if sample < len(answer.texts) else "" for answer in answers]
        interpreted = methods.interpret(config, source, texts)
        cost = sum(a.cost for a in answers) / config.samples
        rows.append(Feedback(
            run=run, attempt=source.attempt, problem=source.problem, method=config.method, teacher=teacher,
            teacher_name=teacher.name, sample_index=sample, template=methods.recorded_template(config.method, templates),
            prompt=json.dumps(list(request.messages), ensure_ascii=False), raw_output="\n\n".join(texts),
            prompt_tokens=sum(a.prompt_tokens for a in answers), completion_tokens=sum(a.completion_tokens for a in answers) // config.samples,
            cost=Decimal(str(round(cost, 6))), **interpreted,
        ))
    Feedback.objects.bulk_create(rows, ignore_conflicts=True)


def _report(run: Run) -> None:
    feedback = Feedback.objects.filter(run=run)
    counts = {
        "feedback": feedback.count(),
        "parse_failures": feedback.filter(parse_ok=False).count(),
        "auto_check_passed": feedback.filter(auto_check=True).count(),
        "auto_check_failed": feedback.filter(auto_check=False).count(),
        "peer_accepted": feedback.filter(peer_accepted=True).count(),
        "per_teacher": methods.per_teacher_counts(feedback),
    }
    run_progress(run_id=run.pk, done=counts["feedback"], counts=counts)
