"""Celery tasks for gather: thin wrappers that take a run id and call the service."""

from celery import shared_task

from webapp.gather.services import gather_execute


@shared_task(acks_late=True, reject_on_worker_lost=True)
def gather_run(run_id: int) -> None:
    gather_execute(run_id=run_id)
