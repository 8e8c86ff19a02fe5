"""Review API: annotators reach only their own reviews; next, decide (200/403/409), queues with progress, bulk, export."""

from __future__ import annotations

import json

import pytest

from tests.webapp.review.conftest import make_feedback
from webapp.review.models import Review
from webapp.review.services import queue_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_queues(researcher, annotator, annotators):
    mine = queue_create(name="mine", feedback=make_feedback(3), annotators=[annotator], user=researcher)
    theirs = queue_create(name="theirs", feedback=make_feedback(2), annotators=[annotators[0]], user=researcher)
    return mine, theirs


def test_annotators_list_only_their_own_reviews_and_researchers_all(client, annotator, researcher, two_queues):
    mine, theirs = two_queues
    client.force_login(annotator)
    listed = client.get("/api/reviews/").json()
    assert listed["count"] == 3 and {r["queue"] for r in listed["results"]} == {mine.pk}
    assert client.get(f"/api/reviews/?queue={theirs.pk}").json()["count"] == 0
    someone_elses = theirs.reviews.first()
    assert client.get(f"/api/reviews/{someone_elses.pk}/").status_code == 404
    client.force_login(researcher)
    assert client.get("/api/reviews/").json()["count"] == 5
    assert client.get(f"/api/reviews/?queue={theirs.pk}&decision=pending").json()["count"] == 2


def test_next_gives_the_item_with_everything_to_decide_it(annotator_client, two_queues):
    mine, theirs = two_queues
    response = annotator_client.get(f"/api/reviews/next/?queue={mine.pk}")
    assert response.status_code == 200
    body = response.json()
    first = Review.objects.filter(queue=mine).order_by("position").first()
    assert body["id"] == first.pk and body["version"] == 0
    assert body["item"]["problem"]["question"] == first.feedback.problem.question
    assert body["item"]["wrong_answer"]["extracted"] == first.feedback.attempt.extracted
    assert body["item"]["feedback"]["text"] == first.feedback.text
    assert annotator_client.get(f"/api/reviews/next/?queue={theirs.pk}").status_code == 404  # not your queue
    assert annotator_client.get("/api/reviews/next/").status_code == 400


def test_decide_saves_then_refuses_a_stale_version_with_409_and_the_current_review(annotator_client, two_queues):
    mine, _ = two_queues
    review = Review.objects.filter(queue=mine).order_by("position").first()
    url = f"/api/reviews/{review.pk}/decide/"
    ok = annotator_client.post(url, {"version": 0, "decision": "edit", "edited_text": "First tab's words.", "seconds": 3},
                               content_type="application/json")
    assert ok.status_code == 200 and ok.json()["version"] == 1 and ok.json()["decision"] == "edit"
    stale = annotator_client.post(url, {"version": 0, "decision": "reject"}, content_type="application/json")
    assert stale.status_code == 409
    assert stale.json()["current"]["edited_text"] == "First tab's words." and stale.json()["current"]["version"] == 1
    assert Review.objects.get(pk=review.pk).decision == "edit"


def test_deciding_someone_elses_review_is_forbidden(annotator_client, two_queues, researcher, client):
    _, theirs = two_queues
    review = theirs.reviews.first()
    response = annotator_client.post(f"/api/reviews/{review.pk}/decide/", {"version": 0, "decision": "approve"},
                                     content_type="application/json")
    assert response.status_code == 403
    assert annotator_client.post("/api/reviews/999999/decide/", {"version": 0, "decision": "approve"},
                                 content_type="application/json").status_code == 404
    assert Review.objects.get(pk=review.pk).decision == "pending"


def test_a_bad_decision_is_a_400(annotator_client, two_queues):
    review = two_queues[0].reviews.first()
    url = f"/api/reviews/{review.pk}/decide/"
    assert annotator_client.post(url, {"version": 0, "decision": "maybe"}, content_type="application/json").status_code == 400
    response = annotator_client.post(url, {"version": 0, "decision": "edit", "edited_text": ""}, content_type="application/json")
    assert response.status_code == 400 and "corrected text" in response.json()["detail"]


def test_next_answers_204_when_all_is_done(annotator_client, annotator, researcher):
    queue = queue_create(name="one", feedback=make_feedback(1), annotators=[annotator], user=researcher)
    body = annotator_client.get(f"/api/reviews/next/?queue={queue.pk}").json()
    annotator_client.post(f"/api/reviews/{body['id']}/decide/", {"version": 0, "decision": "approve"},
                          content_type="application/json")
    assert annotator_client.get(f"/api/reviews/next/?queue={queue.pk}").status_code == 204


def test_researchers_create_queues_and_see_progress_and_agreement(researcher_client, annotators):
    feedback = make_feedback(4)
    response = researcher_client.post("/api/review-queues/", {
        "name": "api queue", "annotators": [a.pk for a in annotators[:2]], "per_item": 2, "priority": "random",
        "seed": 3, "run": feedback[0].run_id}, content_type="application/json")
    assert response.status_code == 201, response.content
    queue_id = response.json()["id"]
    detail = researcher_client.get(f"/api/review-queues/{queue_id}/").json()
    assert detail["progress"]["total"] == 8 and detail["progress"]["items"] == 4
    assert len(detail["annotator_progress"]) == 2 and "annotators" in detail["agreement"]
    too_many = researcher_client.post("/api/review-queues/", {
        "name": "x", "annotators": [annotators[0].pk], "per_item": 2}, content_type="application/json")
    assert too_many.status_code == 400 and "only 1 annotator" in too_many.json()["detail"]


def test_annotators_cannot_use_the_queue_endpoints(annotator_client, annotator, two_queues):
    mine, _ = two_queues
    assert annotator_client.get("/api/review-queues/").status_code == 403
    assert annotator_client.post(f"/api/review-queues/{mine.pk}/bulk/", {"decision": "approve", "filter": "all"},
                                 content_type="application/json").status_code == 403
    assert annotator_client.get(f"/api/review-queues/{mine.pk}/export/?format=lema").status_code == 403


def test_bulk_and_export_through_the_api(researcher_client, two_queues):
    mine, _ = two_queues
    response = researcher_client.post(f"/api/review-queues/{mine.pk}/bulk/", {"decision": "approve", "filter": "all"},
                                      content_type="application/json")
    assert response.json() == {"updated": 3}
    export = researcher_client.get(f"/api/review-queues/{mine.pk}/export/?format=dpo")
    assert export.status_code == 200
    rows = [json.loads(line) for line in b"".join(export.streaming_content).decode().splitlines()]
    assert len(rows) == 3 and set(rows[0]) == {"prompt", "chosen", "rejected"}
    reviews = {r.feedback.text: r.feedback.attempt.raw_output for r in mine.reviews.select_related("feedback__attempt")}
    assert all(reviews[row["chosen"]] == row["rejected"] for row in rows)
    missing = researcher_client.get(f"/api/review-queues/{mine.pk}/export/")
    assert missing.status_code == 400 and "format" in missing.json()["detail"]
