"""Celery tasks for exams: a thin wrapper that takes a run id and calls the service."""

from webapp.celery import app
from webapp.exams.services import exam_execute


@app.task(acks_late=True, reject_on_worker_lost=True)
def exam_run(run_id: int) -> None:
    exam_execute(run_id=run_id)
