"""Gather runs in real Celery worker processes: they complete, and a worker killed mid-run loses and duplicates nothing."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from tests.conftest import start_celery_worker, stop_process, wait_for
from tests.webapp.gather.conftest import known_dataset
from webapp.gather.models import Attempt
from webapp.gather.services import gather_launch
from webapp.runs.models import Run, RunStatus

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def finished(run: Run) -> bool:
    run.refresh_from_db()
    return run.is_finished


def test_a_worker_runs_a_gather_to_the_end(researcher, fake_student, celery_worker_process):
    run = gather_launch(user=researcher, data={"dataset_id": known_dataset(10).pk, "student_endpoint_id": fake_student.pk,
                                               "samples_per_problem": 2})
    wait_for(lambda: finished(run) or celery_worker_process.poll() is not None, timeout=60, what="the gather run")
    assert run.status == RunStatus.SUCCEEDED, run.error or celery_worker_process.log_path.read_text()
    right = Attempt.objects.filter(run=run, correct=True).count()
    assert (Attempt.objects.filter(run=run).count(), right) == (20, 10)
    assert run.counts["correct"] == right and run.percent == 100


def test_a_killed_worker_is_replaced_and_the_run_completes_exactly_once(researcher, fake_student, fake_student_server,
                                                                       tmp_path, settings):
    settings.ERRATA_RUN_STALE_S = 2  # here and in the workers: silent for 2 s means dead
    fake_student_server.configure(latency_s=0.25)
    fake_student.max_concurrency = 2  # 16 requests a chunk, ~2 s each: time to kill it half-way
    fake_student.save()
    run = gather_launch(user=researcher, data={"dataset_id": known_dataset(48).pk, "student_endpoint_id": fake_student.pk,
                                               "use_cache": False})
    first = start_celery_worker(tmp_path / "worker.log", ERRATA_RUN_STALE_S="2")
    try:
        wait_for(lambda: Attempt.objects.filter(run=run).exists(), timeout=60, what="the first answers")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        done_when_killed = Attempt.objects.filter(run=run).count()
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING and 0 < done_when_killed < 48
        wait_for(lambda: run.__class__.objects.get(pk=run.pk).looks_dead, timeout=10, what="the run to look dead")
    finally:
        stop_process(first)
    second = start_celery_worker(tmp_path / "worker.log", ERRATA_RUN_STALE_S="2")
    try:
        wait_for(lambda: finished(run), timeout=90, what="the resumed run")
    finally:
        stop_process(second)
    assert run.status == RunStatus.SUCCEEDED, run.error or (tmp_path / "worker.log").read_text()
    keys = Counter(Attempt.objects.filter(run=run).values_list("problem_id", "sample_index", "round"))
    assert len(keys) == 48 and max(keys.values()) == 1
    assert run.events.filter(message__contains="Queued again to resume").exists()
