"""Celery tasks for teach: thin wrappers that take a run id and call the service."""

from webapp.celery import app
from webapp.teach.services import teach_execute


@app.task(acks_late=True, reject_on_worker_lost=True)
def teach_run(run_id: int) -> None:
    teach_execute(run_id=run_id)
