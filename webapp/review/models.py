"""ReviewQueue (feedback to review, by whom, in which order) and Review (one annotator's decision on one item)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.teach.models import Feedback


class Priority(models.TextChoices):
    CHECKS_FIRST = "checks_first", "Failed checks and disagreements first"
    RANDOM = "random", "Random"


class ReviewQueue(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.JSONField(default=dict, help_text="How its feedback was chosen (a run or a filter).")
    annotators = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="review_queues")
    per_item = models.PositiveIntegerField(default=1, help_text="How many annotators review each item.")
    priority = models.CharField(max_length=20, choices=Priority.choices, default=Priority.CHECKS_FIRST)
    seed = models.PositiveIntegerField(default=0, help_text="Seed of the random order.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("review:queue", args=[self.pk])


class Decision(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVE = "approve", "Approved"
    EDIT = "edit", "Approved with edits"
    REJECT = "reject", "Rejected"
    SKIP = "skip", "Skipped"


class Review(models.Model):
    """One assignment of one feedback item to one annotator, and the decision once made.

    ``version`` goes up with every save; a save names the version it started from, so two people
    saving the same item never silently overwrite each other.
    """

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="reviews")
    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="reviews")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews")
    position = models.PositiveIntegerField(help_text="Order in the annotator's queue (priority first).")
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING, db_index=True)
    edited_text = models.TextField(blank=True)
    comment = models.TextField(blank=True)
    seconds_spent = models.FloatField(default=0)
    version = models.PositiveIntegerField(default=0)
    decided_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["queue", "annotator", "position"]
        constraints = [models.UniqueConstraint(fields=["queue", "feedback", "annotator"], name="review_unique_assignment")]
        # An annotator's next item: WHERE queue, annotator, decision = pending ORDER BY position LIMIT 1.
        indexes = [models.Index(fields=["queue", "annotator", "decision", "position"], name="review_next_item")]

    def __str__(self) -> str:
        return f"review of feedback {self.feedback_id} by {self.annotator_id}: {self.decision}"

    def get_absolute_url(self) -> str:
        return reverse("review:item", args=[self.pk])

    @property
    def final_text(self) -> str:
        """What training uses when approved: the annotator's edit, else the teacher's text."""
        return self.edited_text if self.decision == Decision.EDIT else self.feedback.text
