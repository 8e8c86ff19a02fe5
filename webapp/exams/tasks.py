"""Celery tasks for exams: a thin wrapper that takes a run id and calls the service."""

from webapp.celery import app
from webapp.runs.services import run_busy_retry
from webapp.exams.services import exam_execute


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def exam_run(self, run_id: int) -> None:
    with run_busy_retry(self):  # running in a worker that still reports: look again later
        exam_execute(run_id=run_id)
