"""Which Celery task runs each kind of run (one plain dict, extended as kinds arrive)."""

from __future__ import annotations

RUN_TASKS = {
    "gather": "webapp.gather.tasks.gather_run",
    "teach": "webapp.teach.tasks.teach_run",
    "train": "webapp.train.tasks.train_run",
    "exam": "webapp.exams.tasks.exam_run",
}


def run_enqueue(run) -> None:
    """Send the run's task to the default queue (after the surrounding transaction commits)."""
    from django.db import transaction

    from webapp.celery import app

    task = RUN_TASKS.get(run.kind)
    if task is None:
        raise ValueError(f"no task runs {run.kind} runs yet")
    transaction.on_commit(lambda: app.send_task(task, args=[run.pk], queue="default"))


RUN_STOPPERS = {  # kinds whose worker cannot read the database learn of a cancel another way
    "train": "webapp.train.runs.train_request_stop",
}


def run_signal_stop(run) -> None:
    """Tell a running job's worker to stop, for kinds that do not poll the run's row."""
    from django.utils.module_loading import import_string

    if run.kind in RUN_STOPPERS:
        import_string(RUN_STOPPERS[run.kind])(run)
