"""Editing SALAM feedback on the review page: a Reason and a Guideline box, composed into the JSON SALAM trains on."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from pipeline.seeds.salam_finetune import render_output
from tests.webapp.review.conftest import make_feedback
from webapp.review.models import Review
from webapp.review.services import queue_create, review_submit

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
TEACHER = {"reason": "The model assumed the older man dislikes change.", "guideline": "Answer only from the text."}


def salam_review(researcher, annotator, *, text: str | None = None, fields: dict = TEACHER, **columns) -> Review:
    feedback = make_feedback(1, method="salam", fields=dict(fields), auto_check=None,
                             text=render_output(**fields) if text is None else text, **columns)
    queue = queue_create(name="salam", feedback=feedback, annotators=[annotator], user=researcher)
    return queue.reviews.get()


def page(client, review: Review) -> str:
    return client.get(reverse("review:item", args=[review.pk])).content.decode()


def decide(client, review: Review, **data):
    return client.post(reverse("review:item", args=[review.pk]), {"version": review.version, **data}, **HTMX)


def test_the_editor_has_a_reason_and_a_guideline_box_before_the_comment(annotator_client, researcher, annotator):
    html = page(annotator_client, salam_review(researcher, annotator))
    assert 'name="edited_text"' not in html  # no raw JSON to hand-edit
    reason = re.search(r'<textarea name="reason" id="edit-reason"[^>]*>([^<]*)</textarea>', html)
    guideline = re.search(r'<textarea name="guideline" id="edit-guideline"[^>]*>([^<]*)</textarea>', html)
    assert (reason[1], guideline[1]) == (TEACHER["reason"], TEACHER["guideline"])
    # Tab goes reason -> guideline -> comment: the save button between them is out of the Tab order (Ctrl+Enter saves).
    assert html.index('id="edit-reason"') < html.index('id="edit-guideline"') < html.index('id="review-comment"')
    focusable = re.findall(r'<(?:textarea|button|input(?! type="hidden"))[^>]*>', html[html.index('id="edit-reason"') - 20:
                                                                                       html.index('id="review-comment"')])
    assert [tag for tag in focusable if 'tabindex="-1"' not in tag and "edit-box" not in tag] == []
    assert 'id="save-edit" tabindex="-1"' in html and "<kbd>Ctrl</kbd>+<kbd>Enter</kbd>" in html


def test_saving_the_boxes_stores_the_json_salam_trains_on(annotator_client, researcher, annotator):
    review = salam_review(researcher, annotator)
    response = decide(annotator_client, review, decision="edit", reason="  The model trusted an age stereotype.\r\n",
                      guideline="Say 'cannot be determined'\r\nwhen the text does not tell.", comment="clearer")
    assert response.status_code == 200
    saved = Review.objects.get(pk=review.pk)
    assert saved.decision == "edit" and saved.comment == "clearer"
    assert saved.edited_text == render_output("The model trusted an age stereotype.",
                                              "Say 'cannot be determined'\nwhen the text does not tell.")
    assert json.loads(saved.edited_text)["guideline"].endswith("does not tell.")


def test_a_saved_edit_reopens_with_its_boxes_and_each_ones_diff_against_the_teacher(annotator_client, researcher, annotator):
    review = salam_review(researcher, annotator)
    review_submit(review_id=review.pk, user=annotator, version=0, decision="edit",
                  edited_text=render_output(TEACHER["reason"], "Answer only from what the text says."))
    html = page(annotator_client, review)
    assert "<details id=\"review-editor\" open>" in html
    assert re.search(r'id="edit-guideline"[^>]*>Answer only from what the text says\.</textarea>', html)
    reason_diff = html[html.index('id="diff-reason"'):html.index('id="diff-guideline"')]
    guideline_diff = html[html.index('id="diff-guideline"'):]
    assert "<ins>" not in reason_diff and "<del>" not in reason_diff
    assert "<del>text.</del>" in guideline_diff and "<ins>" in guideline_diff and "says." in guideline_diff


def test_the_live_diff_compares_each_box_with_the_teachers_and_escapes_it(annotator_client, researcher, annotator):
    review = salam_review(researcher, annotator)
    response = annotator_client.post(reverse("review:diff", args=[review.pk]), {
        "reason": TEACHER["reason"], "guideline": "Answer only from the <b>text</b>."})
    html = response.content.decode()
    assert html.startswith('<div id="diff"') and 'id="diff-reason"' in html and 'id="diff-guideline"' in html
    assert "<ins>&lt;b&gt;text&lt;/b&gt;.</ins>" in html and "<del>text.</del>" in html and "<b>" not in html


def test_unchanged_boxes_are_refused_even_when_the_teachers_json_was_spaced_otherwise(annotator_client, researcher, annotator):
    compact = json.dumps(TEACHER, separators=(",", ":"))  # an imported file's own layout: not byte-equal to ours
    review = salam_review(researcher, annotator, text=compact)
    response = decide(annotator_client, review, decision="edit", **TEACHER)
    assert response.status_code == 400 and "approve it instead" in response.content.decode()
    assert Review.objects.get(pk=review.pk).decision == "pending"


def test_an_empty_box_is_refused_and_the_draft_stays_in_the_boxes(annotator_client, researcher, annotator):
    review = salam_review(researcher, annotator)
    response = decide(annotator_client, review, decision="edit", reason="A new reason.", guideline="  ")
    html = response.content.decode()
    assert response.status_code == 400 and "Write the guideline too" in html
    assert re.search(r'id="edit-reason"[^>]*>A new reason\.</textarea>', html)
    assert Review.objects.get(pk=review.pk).decision == "pending"


def test_approving_ignores_the_boxes(annotator_client, researcher, annotator):
    review = salam_review(researcher, annotator)
    assert decide(annotator_client, review, decision="approve", reason="typed, then approved", guideline="").status_code == 200
    saved = Review.objects.get(pk=review.pk)
    assert (saved.decision, saved.edited_text) == ("approve", "")


def test_a_conflict_keeps_the_unsaved_boxes_and_shows_them(annotator_client, researcher, annotator):
    review = salam_review(researcher, annotator)
    review_submit(review_id=review.pk, user=annotator, version=0, decision="approve")
    response = decide(annotator_client, review, decision="edit", reason="My reason.", guideline="My guideline.")
    html = response.content.decode()
    assert response.status_code == 409 and "Not saved" in html
    assert "Reason: My reason.<br>Guideline: My guideline." in html
    assert re.search(r'id="edit-guideline"[^>]*>My guideline\.</textarea>', html)


def test_json_sent_as_edited_text_still_works_from_a_form_and_the_api(client, researcher, annotator):
    client.force_login(annotator)
    review = salam_review(researcher, annotator)
    edited = render_output("From a script.", "Still JSON.")
    assert decide(client, review, decision="edit", edited_text=edited).status_code == 200
    assert Review.objects.get(pk=review.pk).edited_text == edited
    other = salam_review(researcher, annotator)
    response = client.post(f"/api/reviews/{other.pk}/decide/", {"version": 0, "decision": "edit", "edited_text": "no json"},
                           content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json()["detail"]
    response = client.post(f"/api/reviews/{other.pk}/decide/", {"version": 0, "decision": "edit", "edited_text": edited},
                           content_type="application/json")
    assert response.status_code == 200 and response.json()["edited_text"] == edited


def test_a_teacher_output_that_did_not_parse_starts_with_empty_boxes(annotator_client, researcher, annotator):
    review = salam_review(researcher, annotator, text="Reason: stereotypes. Guideline: read.",
                          fields={"reason": None, "guideline": None}, parse_ok=False)
    html = page(annotator_client, review)
    assert re.search(r'id="edit-reason"[^>]*></textarea>', html) and re.search(r'id="edit-guideline"[^>]*></textarea>', html)
    assert decide(annotator_client, review, decision="edit", reason="Stereotypes.", guideline="Read.").status_code == 200
    assert json.loads(Review.objects.get(pk=review.pk).edited_text) == {"reason": "Stereotypes.", "guideline": "Read."}


def test_other_methods_keep_the_single_text_box(annotator_client, researcher, annotator):
    queue = queue_create(name="lema", feedback=make_feedback(1), annotators=[annotator], user=researcher)
    html = page(annotator_client, queue.reviews.get())
    assert 'name="edited_text" id="edited-text" class="edit-box"' in html and 'name="reason"' not in html
