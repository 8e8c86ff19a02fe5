"""Run (one job of any kind, with its frozen config, progress, usage and outcome) and RunEvent (its log)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class RunKind(models.TextChoices):
    GATHER = "gather", "Gather"
    TEACH = "teach", "Teach"
    TRAIN = "train", "Train"
    EXAM = "exam", "Exam"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


def stale_after() -> timedelta:
    """A running run whose worker has not reported for this long is taken for dead and may be resumed."""
    return timedelta(seconds=settings.ERRATA_RUN_STALE_S)


class Run(models.Model):
    kind = models.CharField(max_length=10, choices=RunKind.choices)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    config = models.JSONField(help_text="The configuration, frozen when the run was launched.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from the worker.")
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    phase = models.CharField(max_length=100, blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text="Kind-specific tallies, e.g. correct/wrong.")
    requests = models.PositiveIntegerField(default=0)
    failed_requests = models.PositiveIntegerField(default=0)
    cached_requests = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} run #{self.pk} {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("runs:detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def percent(self) -> int:
        if self.status == RunStatus.SUCCEEDED:
            return 100
        return int(100 * self.progress_done / self.progress_total) if self.progress_total else 0

    @property
    def rate_per_s(self) -> float | None:
        """Work items per second since the run started."""
        if not self.started_at or not self.progress_done:
            return None
        seconds = ((self.finished_at or timezone.now()) - self.started_at).total_seconds()
        return self.progress_done / seconds if seconds > 0 else None

    @property
    def seconds_left(self) -> float | None:
        rate = self.rate_per_s
        if rate is None or self.is_finished:
            return None
        return max(self.progress_total - self.progress_done, 0) / rate

    @property
    def looks_dead(self) -> bool:
        """Running, but the worker has been silent too long: it was probably killed."""
        last = self.heartbeat_at or self.started_at
        return self.status == RunStatus.RUNNING and last is not None and timezone.now() - last > stale_after()


class RunEvent(models.Model):
    """One line of a run's log."""

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["at", "id"]
