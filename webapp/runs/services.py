"""Writes for runs: create, claim (compare-and-swap), report progress, log, cancel, finish, resume."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import contextmanager
from decimal import Decimal
from typing import Sequence

from django.conf import settings

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from webapp.runs.models import FINISHED, Run, RunEvent, RunKind, RunStatus, stale_after

logger = logging.getLogger(__name__)


class RunStateError(ValueError):
    """An action the run's state does not allow (e.g. cancelling a finished run); the message says why."""


def run_create(*, kind: str, name: str, config: dict, user=None, total: int = 0) -> Run:
    if kind not in RunKind.values:
        raise RunStateError(f"unknown run kind {kind!r}")
    return Run.objects.create(kind=kind, name=name[:200], config=config, created_by=user, progress_total=total)


def run_claim(*, run_id: int) -> bool:
    """Take a queued run for this worker; False when another worker has it or it is finished or cancelled."""
    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, error="", finished_at=None,
    )
    return claimed == 1


class RunBusy(Exception):
    """The run is running in a worker that still reports: look again once it would be taken for dead."""

    def __init__(self, run_id: int):
        super().__init__(f"run {run_id} is running in another worker")
        self.run_id = run_id


@contextmanager
def run_busy_retry(task):
    """In a bound Celery task: a RunBusy sends the task again after the stale time, and again, until the run has
    ended (nothing to do then) or its worker went silent (the run is resumed then). This is what brings back a
    run whose worker process was killed while its worker lives on (a prefork child killed for memory: Celery
    hands the message out again at once, while the dead child's heartbeat is still fresh)."""
    try:
        yield
    except RunBusy:
        raise task.retry(countdown=stale_after().total_seconds() + 1) from None  # the task has max_retries=None


def run_execute(*, run_id: int, work: Callable[[Run], dict | None]) -> None:
    """Claim a queued run and do its ``work``; any failure ends the run with its reason, never leaves it running.

    ``work`` returns run_finish's keyword arguments, or None when the run is finished elsewhere (the last
    reply of a gpu queue). A run that ended is left alone. A run running elsewhere raises RunBusy while its
    worker reports (see ``run_busy_retry``), and is resumed here once that worker has gone silent.
    """
    if not run_claim(run_id=run_id):
        run = Run.objects.filter(pk=run_id).first()
        if run is None or run.status != RunStatus.RUNNING:
            logger.info("run %s is not queued; nothing to do", run_id)
            return
        if not run.looks_dead:
            raise RunBusy(run_id)
        if not run_resume_dead(run=run) or not run_claim(run_id=run_id):  # ended, or another worker resumed it first
            return
    try:
        outcome = work(Run.objects.get(pk=run_id))
    except Exception as error:  # noqa: BLE001 - any failure must end the run with its reason
        logger.exception("run %s failed", run_id)
        run_finish(run_id=run_id, status=RunStatus.FAILED, error=f"{type(error).__name__}: {error}")
        return
    if outcome is not None:
        run_finish(run_id=run_id, **outcome)


def run_progress(*, run_id: int, done: int | None = None, total: int | None = None, phase: str | None = None,
                 counts: dict | None = None) -> None:
    """Report progress; doubles as the worker's heartbeat."""
    fields: dict = {"heartbeat_at": timezone.now()}
    for name, value in (("progress_done", done), ("progress_total", total), ("phase", phase), ("counts", counts)):
        if value is not None:
            fields[name] = value
    Run.objects.filter(pk=run_id).update(**fields)


def run_add_usage(*, run_id: int, requests: int = 0, failed: int = 0, cached: int = 0, prompt_tokens: int = 0,
                  completion_tokens: int = 0, cost: float = 0.0) -> None:
    """Add one batch's usage to the run's totals (atomic increments: safe from several workers)."""
    Run.objects.filter(pk=run_id).update(
        requests=F("requests") + requests, failed_requests=F("failed_requests") + failed,
        cached_requests=F("cached_requests") + cached, prompt_tokens=F("prompt_tokens") + prompt_tokens,
        completion_tokens=F("completion_tokens") + completion_tokens, cost=F("cost") + Decimal(str(round(cost, 6))),
    )


def run_ask(*, run_id: int, endpoint, requests: Sequence, use_cache: bool = True) -> list:
    """Ask ``endpoint`` (a ModelEndpoint) for ``requests`` on behalf of a run, through the shared response
    cache; the usage is added to the run. Results come back in request order; failures are results too."""
    from pipeline.models import ModelClient, ResponseCache

    async def ask():
        cache = ResponseCache(settings.DATA_DIR / "model-cache.sqlite3")
        async with ModelClient(endpoint.to_config(), cache=cache, use_cache=use_cache) as client:
            return await client.chat_many(list(requests)), client.usage.as_dict()

    results, usage = asyncio.run(ask())
    run_add_usage(run_id=run_id, requests=usage["requests"], failed=usage["failed"], cached=usage["cached"],
                  prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"], cost=usage["cost"])
    return results


def run_log(*, run_id: int, message: str, level: str = RunEvent.Level.INFO) -> None:
    RunEvent.objects.create(run_id=run_id, message=message[:5000], level=level)


def run_should_stop(*, run_id: int) -> bool:
    """True when someone asked to cancel: the worker stops at its next safe point."""
    return Run.objects.filter(pk=run_id, cancel_requested=True).exists()


def run_finish(*, run_id: int, status: str, error: str = "") -> None:
    if status not in FINISHED:
        raise RunStateError(f"{status!r} is not a finished state")
    now = timezone.now()
    Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(status=status, error=error[:5000], finished_at=now,
                                                                  heartbeat_at=now)
    if error:
        run_log(run_id=run_id, message=error, level=RunEvent.Level.ERROR)


@transaction.atomic
def run_cancel(*, run: Run) -> Run:
    """A queued run is cancelled at once; a running one stops at its worker's next safe point."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.is_finished:
        raise RunStateError(f"run #{run.pk} has already {run.status}")
    if run.status == RunStatus.QUEUED:
        run.status, run.finished_at = RunStatus.CANCELLED, timezone.now()
    run.cancel_requested = True
    run.save(update_fields=["status", "finished_at", "cancel_requested"])
    run_log(run_id=run.pk, message="Cancel requested.")
    from webapp.runs.dispatch import run_signal_stop

    run_signal_stop(run)  # also when queued: a job already handed to a GPU worker must not start for nothing
    return run


@transaction.atomic
def run_requeue(*, run: Run) -> Run:
    """Put a failed, cancelled or dead run back in the queue; finished work is kept and not redone."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.status == RunStatus.SUCCEEDED:
        raise RunStateError(f"run #{run.pk} has succeeded: nothing to resume")
    if run.status == RunStatus.QUEUED:
        return run
    if run.status == RunStatus.RUNNING and not run.looks_dead:
        raise RunStateError(f"run #{run.pk} is running; cancel it first or wait")
    run.status, run.cancel_requested, run.error, run.finished_at = RunStatus.QUEUED, False, "", None
    run.save(update_fields=["status", "cancel_requested", "error", "finished_at"])
    run_log(run_id=run.pk, message="Queued again to resume; finished work is kept.")
    return run


def runs_resume_orphaned() -> list[int]:
    """Queue again every running run whose worker went silent (killed); returns their ids."""
    from webapp.runs.dispatch import RUN_TASKS, run_enqueue

    resumed = []
    for run in Run.objects.filter(status=RunStatus.RUNNING, kind__in=list(RUN_TASKS)):
        if run.looks_dead:
            with transaction.atomic():
                if run_resume_dead(run=run):
                    run_enqueue(run)
                    resumed.append(run.pk)
    return resumed


MAX_AUTO_RESUMES = 3
AUTO_RESUMED = "Its worker went silent: resumed without anyone asking"


def run_resume_dead(*, run: Run) -> bool:
    """Take back a running run whose worker went silent, without a person asking: queued again (True), or ended.

    A cancel asked meanwhile ends it cancelled (nobody was left to stop it). A run resumed this way
    MAX_AUTO_RESUMES times already ends failed: one that kills its worker each time (out of memory at the same
    point, say) would otherwise be run again forever. *Resume* on its page still works.
    """
    if run.cancel_requested:
        run_finish(run_id=run.pk, status=RunStatus.CANCELLED)
        return False
    resumed = run.events.filter(message__startswith=AUTO_RESUMED).count()
    if resumed >= MAX_AUTO_RESUMES:
        run_finish(run_id=run.pk, status=RunStatus.FAILED,
                   error=f"Its worker went silent {resumed + 1} times while running it (killed, out of memory?): "
                         "not resumed again by itself. Fix the cause, then Resume.")
        return False
    run_requeue(run=run)
    run_log(run_id=run.pk, message=f"{AUTO_RESUMED} ({resumed + 1} of {MAX_AUTO_RESUMES}).", level=RunEvent.Level.WARNING)
    return True
