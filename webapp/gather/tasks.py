"""Celery tasks for gather: thin wrappers that take a run id (or a gpu batch's reply) and call the service."""

from webapp.celery import app
from webapp.runs.services import run_busy_retry

from webapp.gather.gpu_queue import gpu_queue_reply
from webapp.gather.services import gather_execute


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def gather_run(self, run_id: int) -> None:
    with run_busy_retry(self):  # running in a worker that still reports: look again later
        gather_execute(run_id=run_id)


@app.task(acks_late=True, reject_on_worker_lost=True)
def gather_batch_done(result: dict, context: dict) -> None:
    """gpu_worker's reply to one generate_batch; a duplicate reply changes nothing."""
    gpu_queue_reply(result=result, reply_context=context)
