"""Review reads: progress, agreement on hand-computed decisions, approved items for export, the word diff."""

from __future__ import annotations

import pytest

from tests.webapp.review.conftest import make_feedback
from webapp.review.models import Review
from webapp.review.selectors import (
    annotator_progress, approved_items, checks_vs_humans, queue_agreement, queue_progress, queues_for, word_diff,
)
from webapp.review.services import queue_create, review_submit


def decide_all(queue, user, items, decisions):
    for item, decision in zip(items, decisions):
        review = Review.objects.get(queue=queue, annotator=user, feedback=item)
        review_submit(review_id=review.pk, user=user, version=review.version, decision=decision,
                      edited_text=f"edited {item.pk}" if decision == "edit" else "")


@pytest.mark.django_db
def test_cohen_kappa_for_two_annotators_on_hand_computed_decisions(researcher, annotators):
    a, b = annotators[:2]
    items = make_feedback(5)
    queue = queue_create(name="q", feedback=items, annotators=[a, b], per_item=2, user=researcher)
    # As accept/reject (an edit accepts): a = A A R A R, b = A R R A A.
    decide_all(queue, a, items, ["approve", "approve", "reject", "edit", "reject"])
    decide_all(queue, b, items, ["approve", "reject", "reject", "approve", "approve"])
    summary = queue_agreement(queue)["annotators"]
    # p_o = 3/5; both accept 3 of 5, so p_e = (3*3 + 2*2) / 25 = 13/25; kappa = (15/25 - 13/25) / (12/25) = 1/6.
    assert summary["method"] == "cohen"
    assert summary["kappa"] == pytest.approx(1 / 6)
    assert summary["percent_agreement"] == pytest.approx(0.6)
    assert summary["items_used"] == 5


@pytest.mark.django_db
def test_fleiss_kappa_for_three_annotators_per_item(researcher, annotators):
    items = make_feedback(4)
    queue = queue_create(name="q", feedback=items, annotators=annotators, per_item=3, user=researcher)
    votes = {annotators[0]: ["approve", "approve", "reject", "reject"],
             annotators[1]: ["approve", "approve", "reject", "reject"],
             annotators[2]: ["approve", "reject", "approve", "reject"]}
    for user, decisions in votes.items():
        decide_all(queue, user, items, decisions)
    summary = queue_agreement(queue)["annotators"]
    # P_i = 1, 1/3, 1/3, 1 -> P-bar = 2/3; accept and reject each 6 of 12 -> P_e = 1/2; kappa = (2/3 - 1/2) / (1/2) = 1/3.
    assert summary["method"] == "fleiss"
    assert summary["kappa"] == pytest.approx(1 / 3)
    assert summary["percent_agreement"] == pytest.approx(2 / 3)


@pytest.mark.django_db
def test_skips_and_pending_reviews_are_not_ratings(researcher, annotators):
    a, b = annotators[:2]
    items = make_feedback(3)
    queue = queue_create(name="q", feedback=items, annotators=[a, b], per_item=2, user=researcher)
    decide_all(queue, a, items, ["approve", "skip", "reject"])
    decide_all(queue, b, items[:1], ["approve"])
    summary = queue_agreement(queue)["annotators"]
    assert summary["items_used"] == 1  # only the first item has two real decisions
    assert summary["kappa"] is None  # one label throughout: undefined, not 1


@pytest.mark.django_db
def test_automatic_checks_agree_with_humans_as_a_second_rater(researcher, annotator):
    items = make_feedback(2, auto_check=True) + make_feedback(2, auto_check=False) + make_feedback(1, auto_check=None)
    queue = queue_create(name="q", feedback=items, annotators=[annotator], user=researcher)
    decide_all(queue, annotator, items, ["approve", "reject", "reject", "reject", "approve"])
    [auto] = checks_vs_humans(queue)
    # Pairs (check, human): (A,A) (A,R) (R,R) (R,R); p_o = 3/4, p_e = (2*1 + 2*3)/16 = 1/2, kappa = 1/2.
    assert auto["check"] == "auto_check" and auto["n"] == 4
    assert auto["agreement"] == pytest.approx(0.75)
    assert auto["kappa"] == pytest.approx(0.5)


@pytest.mark.django_db
def test_progress_per_annotator_and_per_queue(researcher, annotators):
    a, b = annotators[:2]
    items = make_feedback(4)
    queue = queue_create(name="q", feedback=items, annotators=[a, b], per_item=1, user=researcher)
    mine = list(Review.objects.filter(queue=queue, annotator=a).order_by("position"))
    review_submit(review_id=mine[0].pk, user=a, version=0, decision="approve", seconds=10)
    review_submit(review_id=mine[1].pk, user=a, version=0, decision="skip", seconds=2)
    rows = {row["username"]: row for row in annotator_progress(queue)}
    assert (rows["ann-1"]["total"], rows["ann-1"]["done"], rows["ann-1"]["skipped"], rows["ann-1"]["percent"]) == (2, 1, 1, 50)
    assert rows["ann-1"]["seconds_per_item"] == 12  # the time skipping took counts too
    assert (rows["ann-2"]["done"], rows["ann-2"]["pending"]) == (0, 2)
    totals = queue_progress(queue)
    assert (totals["total"], totals["done"], totals["items"], totals["items_done"], totals["percent"]) == (4, 1, 4, 1, 25)


@pytest.mark.django_db
def test_annotators_list_only_their_own_queues_with_their_own_progress(researcher, annotator, annotators):
    items = make_feedback(2)
    theirs = queue_create(name="theirs", feedback=items, annotators=[annotators[0]], user=researcher)
    mine = queue_create(name="mine", feedback=items, annotators=[annotator, annotators[0]], per_item=2, user=researcher)
    [listed] = queues_for(annotator)
    assert listed == mine and listed.mine["total"] == 2 and listed.progress is None
    assert {q.name for q in queues_for(researcher)} == {"theirs", "mine"}
    assert {q.pk: q.progress["total"] for q in queues_for(researcher)} == {theirs.pk: 2, mine.pk: 4}


@pytest.mark.django_db
def test_approved_items_carry_the_problem_the_wrong_answer_and_the_edited_text(researcher, annotator):
    items = make_feedback(3)
    queue = queue_create(name="q", feedback=items, annotators=[annotator], user=researcher)
    decide_all(queue, annotator, items, ["approve", "edit", "reject"])
    exported = approved_items(queue=queue)
    assert [item.text for item in exported] == [items[0].text, f"edited {items[1].pk}"]
    first = exported[0]
    assert first.problem.external_id == items[0].problem.external_id
    assert first.problem.gold_answer == items[0].problem.gold_answer
    assert first.wrong.output == items[0].attempt.raw_output and first.wrong.correct is False
    assert (first.method, first.teacher, first.fields) == ("lema", "teacher-a", items[0].fields)


def test_word_diff_marks_inserted_and_deleted_words():
    assert word_diff("the sum is wrong", "the total is right") == [
        ("equal", "the "), ("delete", "sum"), ("insert", "total"), ("equal", " is "), ("delete", "wrong"),
        ("insert", "right")]
    assert word_diff("same", "same") == [("equal", "same")]
    assert word_diff("", "new words") == [("insert", "new words")]
