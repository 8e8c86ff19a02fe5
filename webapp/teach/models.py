"""PromptTemplate (versioned teacher prompts) and Feedback (one teacher output on one mistake, checked)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.datasets.models import Problem
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.models import Attempt
from webapp.runs.models import Run


class Method(models.TextChoices):
    SALAM = "salam", "SALAM feedback"
    LEMA = "lema", "LEMA correction"
    FAIR = "fair", "FAIR committee"
    GSI = "gsi", "GSI teacher help"
    LBT = "lbt", "LbT rationales"


class PromptTemplate(models.Model):
    """One version of a teacher prompt; a run records the exact version it used. Versions are never edited."""

    name = models.CharField(max_length=60, help_text="e.g. salam_feedback, fair_peer_review")
    method = models.CharField(max_length=10, choices=Method.choices)
    version = models.PositiveIntegerField()
    system = models.TextField(blank=True)
    user = models.TextField()
    note = models.CharField(max_length=300, blank=True, help_text="What changed in this version.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="template_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Feedback(models.Model):
    """A teacher's output for one mistake: typed fields, the text to train on, and the automatic checks."""

    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="feedback",
                            help_text="The teacher run (for imported feedback, the run that imported it).")
    attempt = models.ForeignKey(Attempt, null=True, blank=True, on_delete=models.CASCADE, related_name="feedback",
                                help_text="The mistake; empty for LbT rationales, which answer a problem, not a mistake.")
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="feedback")
    method = models.CharField(max_length=10, choices=Method.choices)
    teacher = models.ForeignKey(ModelEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback")
    teacher_name = models.CharField(max_length=200, help_text="The teacher as named when it wrote this (or in the imported file).")
    sample_index = models.PositiveIntegerField(default=0)
    template = models.ForeignKey(PromptTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prompt = models.TextField(blank=True, help_text="The messages as sent, as JSON text.")
    raw_output = models.TextField()
    parse_ok = models.BooleanField(default=True)
    parse_error = models.TextField(blank=True)
    fields = models.JSONField(default=dict, blank=True, help_text="Typed output: reason/guideline, incorrect step...")
    text = models.TextField(help_text="The feedback as it would be trained on.")
    corrected_answer = models.TextField(blank=True)
    auto_check = models.BooleanField(null=True, help_text="Corrected answer equals gold (LEMA, GSI, LbT).")
    peer_scores = models.JSONField(default=dict, blank=True, help_text="FAIR: reviewer -> score 1-5 or null.")
    peer_mean = models.FloatField(null=True, blank=True)
    peer_accepted = models.BooleanField(null=True, help_text="FAIR: mean of valid peer scores > 3.")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "teacher_name", "method", "sample_index"],
                                    name="feedback_unique_per_teacher"),
            # LbT rationales have no mistake: one per (run, problem, teacher, sample).
            models.UniqueConstraint(fields=["run", "problem", "teacher_name", "method", "sample_index"],
                                    condition=models.Q(attempt__isnull=True), name="rationale_unique_per_teacher"),
        ]
        indexes = [models.Index(fields=["run", "parse_ok"]), models.Index(fields=["method", "auto_check"])]

    def __str__(self) -> str:
        return f"{self.get_method_display()} by {self.teacher_name} on attempt {self.attempt_id}"

    def get_absolute_url(self) -> str:
        return reverse("teach:feedback", args=[self.pk])

    @property
    def checks_failed(self) -> bool:
        """An automatic check said no: such items go first in a review queue."""
        return self.parse_ok is False or self.auto_check is False or self.peer_accepted is False
