"""TrainingSet and TrainingExample (what a model learns from, traced to reviews), TrainMetric and Checkpoint."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.endpoints.models import ModelEndpoint
from webapp.gather.models import Attempt
from webapp.review.models import ReviewQueue
from webapp.runs.models import Run
from webapp.teach.models import Feedback


class Target(models.TextChoices):
    SALAM_ASSISTANT = "salam_assistant", "SALAM study assistant (question + wrong answer → feedback)"
    LEMA_STUDENT = "lema_student", "LEMA student (question + wrong solution → correction, plus chain of thought)"
    FAIR_STUDENT = "fair_student", "FAIR student (feedback and accepted rationales, two-part loss)"
    GSI_ITERATION = "gsi_iteration", "GSI iteration (every correct sample of a gather run)"
    DPO = "dpo", "DPO preference pairs (approved correction over the wrong answer)"
    IMPORTED = "imported", "Imported file"


class TrainingSet(models.Model):
    """Examples frozen at build time: later reviews do not change a set a model was trained on."""

    name = models.CharField(max_length=200)
    target = models.CharField(max_length=20, choices=Target.choices)
    source = models.JSONField(default=dict, help_text="Where the examples came from: queue, run, file, rule.")
    options = models.JSONField(default=dict, blank=True, help_text="Builder options: validation share, seed, ratios.")
    counts = models.JSONField(default=dict, blank=True, help_text="Examples per split and part, and what was skipped.")
    train_file = models.CharField(max_length=500, help_text="JSONL the GPU worker reads.")
    validation_file = models.CharField(max_length=500, blank=True)
    queue = models.ForeignKey(ReviewQueue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("train:set", args=[self.pk])

    @property
    def is_preference(self) -> bool:
        return self.target == Target.DPO


class TrainingExample(models.Model):
    """One example as the model sees it, with the chain back to the feedback, mistake and reviews."""

    training_set = models.ForeignKey(TrainingSet, on_delete=models.CASCADE, related_name="examples")
    position = models.PositiveIntegerField()
    split = models.CharField(max_length=10, choices=[("train", "train"), ("validation", "validation")])
    part = models.CharField(max_length=20, default="main", help_text="FAIR: feedback or rationale; LEMA: cot.")
    data = models.JSONField(help_text="{messages} for SFT, {prompt, chosen, rejected} for DPO.")
    feedback = models.ForeignKey(Feedback, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    attempt = models.ForeignKey(Attempt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviews = models.JSONField(default=list, blank=True, help_text="Ids of the reviews that approved it.")

    class Meta:
        ordering = ["training_set", "position"]
        constraints = [models.UniqueConstraint(fields=["training_set", "position"], name="example_position_unique")]


class TrainMetric(models.Model):
    """What the GPU worker reported at one step; a report that arrives twice replaces the first."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="train_metrics")
    step = models.PositiveIntegerField()
    epoch = models.FloatField(null=True)
    loss = models.FloatField(null=True)
    eval_loss = models.FloatField(null=True)
    learning_rate = models.FloatField(null=True)
    grad_norm = models.FloatField(null=True)
    tokens_per_s = models.FloatField(null=True)
    samples_per_s = models.FloatField(null=True)
    at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="train_metric_step_unique")]


class Checkpoint(models.Model):
    """A saved model: intermediate (resumable) or final (manifest written, may be served as an endpoint)."""

    class Kind(models.TextChoices):
        ADAPTER = "adapter", "LoRA adapter"
        MODEL = "model", "Full weights"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    is_final = models.BooleanField(default=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ADAPTER)
    merged_path = models.CharField(max_length=500, blank=True)
    base_model = models.CharField(max_length=500, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="The exact training configuration.")
    endpoint = models.ForeignKey(ModelEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="checkpoints")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "-is_final", "-step"]
        constraints = [models.UniqueConstraint(fields=["run", "step", "is_final"], name="checkpoint_unique")]

    def __str__(self) -> str:
        return f"{self.run.name} {'final' if self.is_final else f'step {self.step}'}"
