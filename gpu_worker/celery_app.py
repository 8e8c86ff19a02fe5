"""The gpu_worker Celery app (no Django): the `gpu` queue, on the same broker the web side uses, from env only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from celery import Celery

REPO = Path(__file__).resolve().parents[1]
GPU_QUEUE = "gpu"
# As webapp/settings.py reads it: the two apps share the broker, so they must agree.
VISIBILITY_TIMEOUT_ENV = "ERRATA_BROKER_VISIBILITY_TIMEOUT_S"
DEFAULT_VISIBILITY_TIMEOUT_S = 48 * 3600
MIN_VISIBILITY_TIMEOUT_S = 3600  # kombu's own default: less would hand out more running jobs twice, not fewer


class BrokerConfigError(ValueError):
    """A broker setting in the environment that cannot be used: the worker stops at start-up, naming it."""


def data_dir(environ: Mapping[str, str]) -> Path:
    """Same rule as webapp/settings.py: $ERRATA_DATA_DIR, else <repo>/var."""
    return Path(environ.get("ERRATA_DATA_DIR") or REPO / "var").resolve()


def visibility_timeout_s(environ: Mapping[str, str]) -> int:
    """Seconds before Redis hands an unacknowledged job to another worker: longer than the longest training run."""
    raw = (environ.get(VISIBILITY_TIMEOUT_ENV) or "").strip()
    if not raw:
        return DEFAULT_VISIBILITY_TIMEOUT_S
    try:
        value = int(raw)
    except ValueError:
        raise BrokerConfigError(f"{VISIBILITY_TIMEOUT_ENV}={raw!r} is not a whole number") from None
    if value < MIN_VISIBILITY_TIMEOUT_S:
        raise BrokerConfigError(f"{VISIBILITY_TIMEOUT_ENV}={value} must be at least {MIN_VISIBILITY_TIMEOUT_S}")
    return value


def broker_config(environ: Mapping[str, str]) -> dict:
    """Broker settings: $REDIS_URL when set, else kombu's filesystem queue in the web side's folders."""
    redis_url = (environ.get("REDIS_URL") or "").strip()
    visibility_timeout = visibility_timeout_s(environ)  # checked with either broker, as the web side does
    if redis_url:
        return {"broker_url": redis_url, "broker_transport_options": {"visibility_timeout": visibility_timeout}}
    folders = data_dir(environ) / "celery-broker"
    return {
        "broker_url": "filesystem://",
        "broker_transport_options": {
            "data_folder_in": str(folders / "queue"),
            "data_folder_out": str(folders / "queue"),
            "processed_folder": str(folders / "processed"),
            "control_folder": str(folders / "control"),
            "store_processed": False,
        },
    }


def make_app(environ: Mapping[str, str] | None = None) -> Celery:
    """A Celery app configured from ``environ`` (default: os.environ); tests build one per broker folder."""
    environ = os.environ if environ is None else environ
    # No Django fixup: with DJANGO_SETTINGS_MODULE in its environment Celery would set Django up inside
    # this worker, register the web app's tasks and run its start-up hooks. And never the current app:
    # a process that imports both apps (tests, the web side) must keep sending through its own.
    celery = Celery("errata_gpu", fixups=[], set_as_current=False)
    celery.conf.update(
        **broker_config(environ),
        task_default_queue=GPU_QUEUE,
        task_routes={"gpu_worker.*": {"queue": GPU_QUEUE}},
        task_acks_late=True,  # a worker killed mid-batch leaves the message for the next worker
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # one batch at a time: a batch can hold the GPU for minutes
        task_ignore_result=True,  # results travel back as tasks on the web side's queue
        broker_connection_retry_on_startup=True,
        include=["gpu_worker.tasks", "gpu_worker.training.task"],
    )
    ensure_broker_folders(celery)
    return celery


def ensure_broker_folders(celery: Celery) -> None:
    """kombu's filesystem transport needs its folders before anyone sends or polls."""
    if not str(celery.conf.broker_url).startswith("filesystem"):
        return
    options = celery.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


app = make_app()
