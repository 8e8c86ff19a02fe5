"""Errata's Django project: settings, URLs, ASGI and Celery wiring, and the domain apps."""

from webapp.celery import app as celery_app

__all__ = ["celery_app"]
