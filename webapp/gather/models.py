"""Attempt: one student answer to one problem in one run (sample k of round r), scored."""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from pipeline.attempts import AttemptRecord
from webapp.datasets.models import Problem
from webapp.endpoints.models import ModelEndpoint
from webapp.runs.models import Run


class Guidance(models.TextChoices):
    NONE = "", "None (plain pass)"
    ANSWER = "answer", "Answer-driven"
    RATIONALE = "rationale", "Rationale-driven"
    STATE_RESET = "state_reset", "State reset"
    TEACHER_HELP = "teacher_help", "Teacher help"


class Attempt(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempts")
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="attempts")
    endpoint = models.ForeignKey(ModelEndpoint, null=True, on_delete=models.SET_NULL, related_name="attempts",
                                 help_text="The student model that answered.")
    model_name = models.CharField(max_length=200, help_text="The model name as it was when it answered.")
    sample_index = models.PositiveIntegerField(default=0)
    round = models.PositiveIntegerField(default=0, help_text="0: plain pass; 1 and up: guided resampling.")
    guidance = models.CharField(max_length=20, choices=Guidance.choices, blank=True, default="")
    prompt = models.TextField(help_text="The messages as sent, as JSON text.")
    raw_output = models.TextField()
    extracted = models.TextField(null=True, blank=True)
    correct = models.BooleanField(db_index=True)
    scorer = models.CharField(max_length=40)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "problem", "round", "sample_index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "problem", "sample_index", "round"], name="attempt_unique_per_run"),
        ]
        indexes = [models.Index(fields=["run", "correct"]), models.Index(fields=["problem", "correct"])]

    def __str__(self) -> str:
        verdict = "right" if self.correct else "wrong"
        return f"attempt on {self.problem_id} ({verdict}, sample {self.sample_index}, round {self.round})"

    def get_absolute_url(self) -> str:
        return reverse("gather:attempt", args=[self.pk])

    def as_record(self) -> AttemptRecord:
        """The answer as the pipeline's plain record (guidance, teacher prompts, seed files, exports)."""
        return AttemptRecord(problem_external_id=self.problem.external_id, output=self.raw_output,
                             extracted=self.extracted, correct=self.correct, sample_index=self.sample_index,
                             round=self.round, guidance=self.guidance, prompt=self.prompt, metadata=self.metadata)

    @property
    def is_mistake(self) -> bool:
        return not self.correct
