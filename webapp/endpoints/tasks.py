"""Celery tasks for endpoints: take a model server's announcement (sent by name from gpu_worker/announce.py)."""

import logging

from webapp.celery import app
from webapp.endpoints.announcements import AnnouncementError, parse_announcement
from webapp.endpoints.services import endpoint_record_announcement

logger = logging.getLogger(__name__)


@app.task(acks_late=True, reject_on_worker_lost=True)
def endpoint_announced(payload: dict) -> None:
    """Register or refresh one endpoint per announced model, and serve again the runs' adapters the server lost
    (it restarted); a malformed announcement is logged and dropped."""
    try:
        announcement = parse_announcement(payload)
    except AnnouncementError as error:
        logger.warning("dropped a model server announcement: %s", error)
        return
    endpoint_record_announcement(announcement=announcement)
    from webapp.train.serving import adapters_restore  # train builds on endpoints, not the other way round

    adapters_restore(announcement=announcement)
