"""Train fixtures: a review queue with approved items of each method, and a local base model endpoint."""

from __future__ import annotations

import pytest

from pipeline.exports import lema_correction_text
from pipeline.seeds.salam_finetune import render_output
from tests.webapp.review.conftest import make_feedback
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.review.models import Decision, Review
from webapp.review.services import queue_create


def approved_queue(feedback, annotator, *, decisions=None, name="train-tests"):
    """A queue over ``feedback`` with one review each by ``annotator``, decided as ``decisions`` (default approve)."""
    queue = queue_create(name=name, feedback=feedback, annotators=[annotator], per_item=1, priority="random")
    reviews = Review.objects.filter(queue=queue).order_by("feedback_id")
    for review, decision in zip(reviews, decisions or [Decision.APPROVE] * len(feedback)):
        edited = review.feedback.text + " (checked)" if decision == Decision.EDIT else ""
        Review.objects.filter(pk=review.pk).update(decision=decision, edited_text=edited)
    return queue


def salam_feedback(count: int):
    made = []
    for feedback in make_feedback(count, method="salam"):
        feedback.fields = {"reason": "added instead of counting", "guideline": "count what is left"}
        feedback.text = render_output(feedback.fields["reason"], feedback.fields["guideline"])
        feedback.save(update_fields=["fields", "text"])
        made.append(feedback)
    return made


@pytest.fixture
def lema_queue(db, annotator):
    return approved_queue(make_feedback(6), annotator, name="lema approved")


@pytest.fixture
def base_endpoint(db, tmp_path):
    return ModelEndpoint.objects.create(name="tiny base", kind=EndpointKind.LOCAL, base_url="http://127.0.0.1:9/v1",
                                        model_name="tiny", base_weights=str(tmp_path / "tiny"))


__all__ = ["approved_queue", "salam_feedback", "lema_correction_text"]
