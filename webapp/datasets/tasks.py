"""Celery tasks for datasets: thin wrappers that take an id and call the service."""

from webapp.celery import app

from webapp.datasets.services import dataset_import_run


@app.task(acks_late=True, reject_on_worker_lost=True)
def import_dataset(import_id: int) -> str:
    return dataset_import_run(import_id=import_id).status
