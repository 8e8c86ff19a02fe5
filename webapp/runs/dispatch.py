"""Which Celery task runs each kind of run (one plain dict, extended as kinds arrive)."""

from __future__ import annotations

RUN_TASKS = {
    "gather": "webapp.gather.tasks.gather_run",
    "teach": "webapp.teach.tasks.teach_run",
}


def run_enqueue(run) -> None:
    """Send the run's task to the default queue (after the surrounding transaction commits)."""
    from django.db import transaction

    from webapp.celery import app

    task = RUN_TASKS.get(run.kind)
    if task is None:
        raise ValueError(f"no task runs {run.kind} runs yet")
    transaction.on_commit(lambda: app.send_task(task, args=[run.pk], queue="default"))
