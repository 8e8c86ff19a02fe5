"""A run's task delivered again while the run is running (its worker process killed, the worker alive): the task
looks again after the stale time and resumes the run once its worker has gone silent; never runs it twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from webapp.exams.tasks import exam_run
from webapp.gather.tasks import gather_run
from webapp.runs.models import Run, RunKind, RunStatus
from webapp.runs.services import MAX_AUTO_RESUMES, RunBusy, run_cancel, run_execute, runs_resume_orphaned
from webapp.teach.tasks import teach_run

pytestmark = pytest.mark.django_db


def running(kind: str = RunKind.GATHER, *, silent_for: timedelta = timedelta(0)) -> Run:
    beat = timezone.now() - silent_for
    return Run.objects.create(kind=kind, name="r", config={}, status=RunStatus.RUNNING, started_at=beat, heartbeat_at=beat)


def test_a_run_whose_worker_still_reports_is_busy_and_its_work_is_not_done_twice():
    run, done = running(), []
    with pytest.raises(RunBusy):
        run_execute(run_id=run.pk, work=lambda r: done.append(r.pk))
    assert done == []
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_a_run_whose_worker_went_silent_is_resumed_here(settings):
    settings.ERRATA_RUN_STALE_S = 60
    run, done = running(silent_for=timedelta(seconds=61)), []
    run_execute(run_id=run.pk, work=lambda r: done.append(r.pk) or {"status": RunStatus.SUCCEEDED})
    assert done == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.events.filter(message__contains="Queued again to resume").exists()


def test_a_dead_run_someone_cancelled_is_ended_cancelled_not_resumed(settings):
    settings.ERRATA_RUN_STALE_S = 60
    run, done = running(silent_for=timedelta(seconds=61)), []
    run_cancel(run=run)  # nobody is left to stop it: it stays running until taken back
    run_execute(run_id=run.pk, work=lambda r: done.append(r.pk))
    assert done == [] and Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED

    orphan = running(silent_for=timedelta(seconds=61))
    run_cancel(run=orphan)
    assert runs_resume_orphaned() == []
    assert Run.objects.get(pk=orphan.pk).status == RunStatus.CANCELLED


def test_a_run_that_kills_its_worker_every_time_is_failed_after_a_few_resumes(settings):
    settings.ERRATA_RUN_STALE_S = 60
    run, done = running(silent_for=timedelta(seconds=61)), []

    def dies(r):  # the worker is killed at the same point each time: the run is left running, silent
        done.append(r.pk)
        Run.objects.filter(pk=r.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
        return None

    for _ in range(MAX_AUTO_RESUMES + 2):
        run_execute(run_id=run.pk, work=dies)
    run.refresh_from_db()
    assert len(done) == MAX_AUTO_RESUMES
    assert run.status == RunStatus.FAILED and f"went silent {MAX_AUTO_RESUMES + 1} times" in run.error


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.CANCELLED])
def test_a_run_that_ended_is_left_alone(status):
    run, done = running(), []
    Run.objects.filter(pk=run.pk).update(status=status)
    run_execute(run_id=run.pk, work=lambda r: done.append(r.pk))
    assert done == []


class SentAgain:
    """Stands in for the task's broker: records what Task.retry would send (a real retry needs a worker's request)."""

    def __init__(self, task):
        self.task, self.countdowns = task, []

    def __call__(self, countdown):
        self.countdowns.append(countdown)
        return Retry(when=countdown)


@pytest.mark.parametrize("task,kind", [(gather_run, RunKind.GATHER), (teach_run, RunKind.TEACH), (exam_run, RunKind.EXAM)])
def test_each_run_task_sends_itself_again_after_the_stale_time_for_as_long_as_it_takes(task, kind, settings, monkeypatch):
    settings.ERRATA_RUN_STALE_S = 45
    sent = SentAgain(task)
    monkeypatch.setattr(task, "retry", sent)
    with pytest.raises(Retry):
        task.run(running(kind).pk)
    assert sent.countdowns == [46]
    assert task.max_retries is None and task.acks_late
