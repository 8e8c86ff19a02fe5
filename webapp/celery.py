"""The Celery application: broker from settings (Redis, or a filesystem queue on one machine)."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("errata")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_local_broker_folders() -> None:
    """kombu's filesystem transport needs its folders to exist before anyone sends or polls."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


if str(app.conf.broker_url or "").startswith("filesystem"):
    ensure_local_broker_folders()


@worker_ready.connect
def resume_orphaned_runs(sender=None, **kwargs) -> None:
    """A worker that starts picks up runs whose worker died mid-way (a killed worker's message may be gone)."""
    from webapp.runs.services import runs_resume_orphaned

    for run_id in runs_resume_orphaned():
        app.log.get_default_logger().warning("resumed run %s: its worker had gone silent", run_id)
