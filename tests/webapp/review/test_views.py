"""Review pages: who may open what, the htmx review loop, conflicts, escaping, queue creation, bulk and export."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.webapp.review.conftest import make_feedback
from webapp.review.models import Review, ReviewQueue
from webapp.review.services import queue_create, review_submit

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def queue(researcher, annotator):
    return queue_create(name="lessons", feedback=make_feedback(3), annotators=[annotator], user=researcher)


def first_review(queue, user) -> Review:
    return Review.objects.filter(queue=queue, annotator=user).order_by("position").first()


def test_the_review_page_shows_the_problem_the_wrong_answer_the_feedback_and_the_shortcuts(annotator_client, queue, annotator):
    review = first_review(queue, annotator)
    html = annotator_client.get(reverse("review:work", args=[queue.pk])).content.decode()
    feedback = review.feedback
    assert feedback.problem.question in html
    assert f'<code id="gold">{feedback.problem.gold_answer}</code>' in html
    assert feedback.attempt.extracted in html and "the sum is wrong" in html
    for key in ("a", "r", "e", "s", "c"):
        assert f"<kbd>{key}</kbd>" in html
    assert "js/review.js" in html
    assert f'data-review="{review.pk}"' in html


def test_an_annotator_cannot_open_or_save_someone_elses_item(client, researcher, annotator, annotators, queue):
    other = queue_create(name="not yours", feedback=make_feedback(1), annotators=[annotators[0]], user=researcher)
    theirs = first_review(other, annotators[0])
    client.force_login(annotator)
    assert client.get(reverse("review:work", args=[other.pk])).status_code == 404
    assert client.get(reverse("review:item", args=[theirs.pk])).status_code == 404
    response = client.post(reverse("review:item", args=[theirs.pk]), {"version": 0, "decision": "approve"})
    assert response.status_code == 404
    assert client.post(reverse("review:diff", args=[theirs.pk]), {"edited_text": "x"}).status_code == 404
    assert Review.objects.get(pk=theirs.pk).decision == "pending"
    assert client.get(reverse("review:queue", args=[queue.pk])).status_code == 403  # researchers' page
    html = client.get(reverse("review:queues")).content.decode()
    assert "lessons" in html and "not yours" not in html


def test_a_decision_over_htmx_answers_with_the_next_item_and_its_url(annotator_client, queue, annotator):
    first, second = Review.objects.filter(queue=queue).order_by("position")[:2]
    response = annotator_client.post(reverse("review:item", args=[first.pk]),
                                     {"version": 0, "decision": "approve", "comment": "fine", "seconds": "4.5"}, **HTMX)
    assert response.status_code == 200
    assert response["HX-Push-Url"] == reverse("review:item", args=[second.pk])
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="review-item"') and "<html" not in html  # the partial only
    assert f'data-review="{second.pk}"' in html
    first.refresh_from_db()
    assert (first.decision, first.comment, first.seconds_spent, first.version) == ("approve", "fine", 4.5, 1)


def test_without_htmx_a_decision_redirects_to_the_next_item(annotator_client, queue, annotator):
    first, second = Review.objects.filter(queue=queue).order_by("position")[:2]
    response = annotator_client.post(reverse("review:item", args=[first.pk]), {"version": 0, "decision": "reject"})
    assert response.status_code == 302 and response["Location"] == reverse("review:item", args=[second.pk])


def test_the_last_decision_shows_the_all_done_state(annotator_client, researcher, annotator):
    queue = queue_create(name="one", feedback=make_feedback(1), annotators=[annotator], user=researcher)
    review = first_review(queue, annotator)
    response = annotator_client.post(reverse("review:item", args=[review.pk]), {"version": 0, "decision": "skip"}, **HTMX)
    assert response["HX-Push-Url"] == reverse("review:work", args=[queue.pk])
    html = response.content.decode()
    assert "All done" in html and "Go back to the skipped items" in html
    revisit = annotator_client.get(reverse("review:work", args=[queue.pk]) + "?skipped=1").content.decode()
    assert f'data-review="{review.pk}"' in revisit


def test_a_stale_save_shows_the_conflict_with_the_current_text(annotator_client, queue, annotator):
    review = first_review(queue, annotator)
    review_submit(review_id=review.pk, user=annotator, version=0, decision="edit", edited_text="Saved in the other tab.")
    response = annotator_client.post(reverse("review:item", args=[review.pk]),
                                     {"version": 0, "decision": "edit", "edited_text": "My unsaved words."}, **HTMX)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Not saved" in html and "Saved in the other tab." in html and "My unsaved words." in html
    assert 'name="version" value="1"' in html  # deciding again now starts from the saved version
    review.refresh_from_db()
    assert review.edited_text == "Saved in the other tab." and review.version == 1


def test_an_unchanged_edit_is_refused_with_a_message(annotator_client, queue, annotator):
    review = first_review(queue, annotator)
    response = annotator_client.post(reverse("review:item", args=[review.pk]),
                                     {"version": 0, "decision": "edit", "edited_text": review.feedback.text}, **HTMX)
    assert response.status_code == 400
    assert "approve it instead" in response.content.decode()
    assert Review.objects.get(pk=review.pk).decision == "pending"


def test_model_text_is_escaped_everywhere_including_the_diff(annotator_client, researcher, annotator):
    evil = "<script>alert(1)</script>"
    feedback = make_feedback(1, text=f"Fix it {evil}", fields={"explanation": evil}, raw_output=evil)[0]
    feedback.problem.question = f"Q {evil}"
    feedback.problem.save()
    queue = queue_create(name="q", feedback=[feedback], annotators=[annotator], user=researcher)
    review = first_review(queue, annotator)
    html = annotator_client.get(reverse("review:item", args=[review.pk])).content.decode()
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    diff = annotator_client.post(reverse("review:diff", args=[review.pk]), {"edited_text": f"Fixed <b>it</b> {evil}"}).content.decode()
    assert "<ins>Fixed</ins>" in diff and "<del>Fix</del>" in diff
    assert "<b>" not in diff and evil not in diff and "&lt;b&gt;it&lt;/b&gt;" in diff


def test_a_researcher_creates_a_queue_from_a_teacher_run(researcher_client, researcher, annotators):
    feedback = make_feedback(4)
    make_feedback(2)  # another run: not in the queue
    response = researcher_client.post(reverse("review:queues"), {
        "name": "run queue", "run": feedback[0].run_id, "annotators": [a.pk for a in annotators[:2]], "per_item": 2,
        "priority": "checks_first", "seed": 0})
    queue = ReviewQueue.objects.get(name="run queue")
    assert response.status_code == 302 and response["Location"] == queue.get_absolute_url()
    assert queue.reviews.count() == 8 and queue.source == {"run": feedback[0].run_id}


def test_too_many_annotators_per_item_is_shown_on_the_form(researcher_client, annotators):
    make_feedback(1)
    response = researcher_client.post(reverse("review:queues"), {
        "name": "x", "annotators": [annotators[0].pk], "per_item": 2, "priority": "random", "seed": 0})
    assert response.status_code == 400 and "Only 1 annotator chosen" in response.content.decode()


def test_annotators_cannot_create_queues(annotator_client, annotator):
    response = annotator_client.post(reverse("review:queues"), {"name": "x", "annotators": [annotator.pk], "per_item": 1})
    assert response.status_code == 403 and not ReviewQueue.objects.exists()


def test_the_queue_page_shows_progress_agreement_bulk_and_exports(researcher_client, queue, annotator):
    review = first_review(queue, annotator)
    review_submit(review_id=review.pk, user=annotator, version=0, decision="approve")
    html = researcher_client.get(reverse("review:queue", args=[queue.pk])).content.decode()
    assert annotator.username in html and "33%" in html
    assert "Automatic checks against the annotators" in html
    for name in ("salam_finetune", "lema", "fair", "chat", "dpo"):
        assert f"?format={name}" in html


def test_bulk_approve_from_the_queue_page(researcher_client, queue):
    response = researcher_client.post(reverse("review:bulk", args=[queue.pk]),
                                      {"decision": "approve", "filter": "auto_check_passed"})
    assert response.status_code == 302
    assert set(queue.reviews.values_list("decision", flat=True)) == {"approve"}


def test_export_from_the_queue_page_uses_the_edited_text(researcher_client, queue, annotator):
    first, second, _ = Review.objects.filter(queue=queue).order_by("position")
    review_submit(review_id=first.pk, user=annotator, version=0, decision="edit", edited_text="Edited correction.")
    review_submit(review_id=second.pk, user=annotator, version=0, decision="reject")
    response = researcher_client.get(reverse("review:export", args=[queue.pk]) + "?format=lema")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [row["completion"] for row in rows] == ["Edited correction."]
    assert researcher_client.get(reverse("review:export", args=[queue.pk]) + "?format=nope").status_code == 400
    # SALAM's format holds SALAM feedback only: nothing here fits.
    response = researcher_client.get(reverse("review:export", args=[queue.pk]) + "?format=salam_finetune")
    assert response.status_code == 400 and b"no approved salam feedback" in response.content
