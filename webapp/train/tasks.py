"""Celery tasks for train: hand a run to the gpu queue, and take the GPU worker's events back."""

from webapp.celery import app
from webapp.train.runs import train_dispatch, train_event as record_event


@app.task(acks_late=True, reject_on_worker_lost=True)
def train_run(run_id: int) -> None:
    train_dispatch(run_id=run_id)


@app.task(acks_late=True, reject_on_worker_lost=True)
def train_event(run_id: int, event: dict) -> None:
    record_event(run_id=run_id, event=event)
