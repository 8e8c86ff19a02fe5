"""Celery tasks for teach: thin wrappers that take a run id and call the service."""

from webapp.celery import app
from webapp.runs.services import run_busy_retry
from webapp.teach.services import teach_execute


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def teach_run(self, run_id: int) -> None:
    with run_busy_retry(self):  # running in a worker that still reports: look again later
        teach_execute(run_id=run_id)
