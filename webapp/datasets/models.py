"""Dataset, Problem and DatasetImport (one import job: upload, command or API)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from pipeline.benchmarks.records import ProblemRecord


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    TEST = "test", "Test"


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    benchmark = models.CharField(max_length=40, help_text="Benchmark kind, e.g. gsm8k, bbh; picks the default scorer.")
    answer_format = models.CharField(max_length=40)
    scorer = models.CharField(max_length=40, help_text="Scorer used to mark answers right or wrong.")
    source = models.CharField(max_length=500, blank=True, help_text="Where the problems came from (file names).")
    license_note = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    split_rule = models.JSONField(default=dict, help_text="How problems were split into train and test.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("datasets:detail", args=[self.pk])


class Problem(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="problems")
    external_id = models.CharField(max_length=200, help_text="The id in the source file.")
    position = models.PositiveIntegerField(help_text="Order in the source file.")
    split = models.CharField(max_length=8, choices=Split.choices)
    task = models.CharField(max_length=100, blank=True)
    question = models.TextField()
    choices = models.JSONField(default=list, blank=True)
    gold_answer = models.TextField()
    gold_rationale = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    question_hash = models.CharField(max_length=64, db_index=True, help_text="SHA-256 of the normalised question.")

    class Meta:
        ordering = ["dataset", "position"]
        constraints = [models.UniqueConstraint(fields=["dataset", "external_id"], name="problem_unique_per_dataset")]
        indexes = [models.Index(fields=["dataset", "split", "task"])]

    def __str__(self) -> str:
        return f"{self.dataset.name} #{self.external_id}"

    def get_absolute_url(self) -> str:
        return reverse("datasets:problem", args=[self.pk])

    def as_record(self) -> ProblemRecord:
        """The problem as the pipeline's plain record (prompts, scoring, exports)."""
        return ProblemRecord(external_id=self.external_id, question=self.question, gold_answer=self.gold_answer,
                             choices=tuple(self.choices), gold_rationale=self.gold_rationale, split=self.split,
                             task=self.task, metadata=self.metadata)

    @property
    def lettered_choices(self) -> list[tuple[str, str]]:
        return [(chr(ord("A") + i), text) for i, text in enumerate(self.choices)]


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class DatasetImport(models.Model):
    """One request to import files into a dataset; the files wait in ``upload_dir`` until it runs."""

    status = models.CharField(max_length=12, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    phase = models.CharField(max_length=40, blank=True, help_text="What the import is doing now.")
    dataset_name = models.CharField(max_length=200, blank=True)
    format = models.CharField(max_length=40, blank=True, help_text="Requested format; empty means detect.")
    detected_format = models.CharField(max_length=40, blank=True)
    options = models.JSONField(default=dict, help_text="Split rule, seed, license note.")
    file_names = models.JSONField(default=list)
    upload_dir = models.CharField(max_length=500)
    content_sha256 = models.CharField(max_length=64, db_index=True)
    total_bytes = models.BigIntegerField(default=0)
    records_read = models.PositiveIntegerField(default=0)
    problems_added = models.PositiveIntegerField(default=0)
    problems_skipped = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import #{self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("datasets:import-detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED)
