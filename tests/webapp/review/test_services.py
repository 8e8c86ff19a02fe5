"""Review services: queue building (assignment, priority), compare-and-swap saves, bulk decisions, approval rules."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.exceptions import PermissionDenied

from tests.webapp.review.conftest import make_feedback
from webapp.review.models import Review
from webapp.review.selectors import approved_feedback
from webapp.review.services import (
    ReviewConflict, ReviewError, assignment_plan, queue_create, review_next, review_submit, reviews_bulk_decide,
)

pytestmark = pytest.mark.django_db


def queue_over(feedback, annotators, researcher, **options):
    return queue_create(name="q", feedback=feedback, annotators=annotators, user=researcher, **options)


def test_each_item_gets_per_item_different_annotators_and_loads_differ_by_at_most_one(researcher, annotators):
    feedback = make_feedback(10)
    queue = queue_over(feedback, annotators, researcher, per_item=2)
    reviews = list(Review.objects.filter(queue=queue))
    assert len(reviews) == 20
    per_item = Counter(r.feedback_id for r in reviews)
    assert set(per_item.values()) == {2}
    assert all(len({r.annotator_id for r in reviews if r.feedback_id == f.pk}) == 2 for f in feedback)
    loads = Counter(r.annotator_id for r in reviews)
    assert sorted(loads.values()) == [6, 7, 7]


def test_the_plan_is_balanced_for_every_shape():
    for items in range(0, 30):
        for n in range(1, 6):
            for per_item in range(1, n + 1):
                plan = assignment_plan(items, list(range(n)), per_item)
                assert all(len(set(assigned)) == per_item for assigned in plan)
                loads = Counter(a for assigned in plan for a in assigned)
                assert max(loads.values(), default=0) - min((loads[a] for a in range(n)), default=0) <= 1


def test_more_annotators_per_item_than_annotators_is_refused_with_a_clear_message(researcher, annotators):
    with pytest.raises(ReviewError, match="3 annotators per item, but only 2 annotators chosen"):
        queue_over(make_feedback(2), annotators[:2], researcher, per_item=3)


def test_an_empty_selection_is_refused(researcher, annotators):
    from webapp.teach.models import Feedback

    with pytest.raises(ReviewError, match="no feedback"):
        queue_over(Feedback.objects.none(), annotators, researcher)


def test_checks_first_puts_failed_checks_and_disagreements_first(researcher, annotator):
    passes = make_feedback(1)[0]
    failed_check = make_feedback(1, auto_check=False)[0]
    also_passes = make_feedback(1)[0]
    # Two teachers on one mistake with different corrected answers: a disagreement, though both pass their check.
    first_teacher = make_feedback(1, corrected_answer="7")[0]
    second_teacher = make_feedback(1, attempt=first_teacher.attempt, teacher="teacher-b", corrected_answer="8")[0]
    # Two teachers that agree are not a disagreement.
    agreeing = make_feedback(1)[0]
    agreeing_too = make_feedback(1, attempt=agreeing.attempt, teacher="teacher-b")[0]
    unparsed = make_feedback(1, parse_ok=False, auto_check=None)[0]
    peer_rejected = make_feedback(1, method="fair", auto_check=None, peer_accepted=False)[0]
    everything = [passes, failed_check, also_passes, first_teacher, second_teacher, agreeing, agreeing_too, unparsed,
                  peer_rejected]
    queue = queue_over(everything, [annotator], researcher, priority="checks_first")
    order = list(Review.objects.filter(queue=queue).order_by("position").values_list("feedback_id", flat=True))
    urgent = [failed_check.pk, first_teacher.pk, second_teacher.pk, unparsed.pk, peer_rejected.pk]
    assert order[:5] == urgent  # in mistake order, the two disagreeing teachers side by side
    assert order[5:] == [passes.pk, also_passes.pk, agreeing.pk, agreeing_too.pk]


def test_random_order_is_fixed_by_the_seed(researcher, annotator):
    feedback = make_feedback(30)

    def order(seed):
        queue = queue_over(feedback, [annotator], researcher, priority="random", seed=seed)
        return list(Review.objects.filter(queue=queue).order_by("position").values_list("feedback_id", flat=True))

    assert order(7) == order(7)
    assert order(7) != order(8)
    assert sorted(order(7)) == sorted(f.pk for f in feedback)


def test_next_gives_the_lowest_pending_position_and_none_when_done(researcher, annotator):
    feedback = make_feedback(3)
    queue = queue_over(feedback, [annotator], researcher, priority="random", seed=1)
    seen = []
    while (review := review_next(annotator=annotator, queue=queue)) is not None:
        seen.append(review.position)
        review_submit(review_id=review.pk, user=annotator, version=review.version, decision="approve")
    assert seen == [0, 1, 2]


def test_skip_moves_on_and_skipped_items_can_be_revisited(researcher, annotator):
    queue = queue_over(make_feedback(2), [annotator], researcher)
    first = review_next(annotator=annotator, queue=queue)
    review_submit(review_id=first.pk, user=annotator, version=0, decision="skip")
    second = review_next(annotator=annotator, queue=queue)
    assert second.pk != first.pk
    review_submit(review_id=second.pk, user=annotator, version=0, decision="approve")
    assert review_next(annotator=annotator, queue=queue) is None
    assert review_next(annotator=annotator, queue=queue, revisit_skipped=True).pk == first.pk


def test_a_save_from_a_stale_version_is_a_conflict_and_loses_nothing(researcher, annotator):
    queue = queue_over(make_feedback(1), [annotator], researcher)
    review = review_next(annotator=annotator, queue=queue)
    # Two tabs opened the item at version 0; the first saves an edit.
    saved = review_submit(review_id=review.pk, user=annotator, version=0, decision="edit",
                          edited_text="A better correction.", seconds=12.5)
    assert saved.version == 1 and saved.final_text == "A better correction."
    with pytest.raises(ReviewConflict) as conflict:
        review_submit(review_id=review.pk, user=annotator, version=0, decision="reject", seconds=3)
    assert conflict.value.current.version == 1
    assert conflict.value.current.edited_text == "A better correction."
    review.refresh_from_db()
    assert (review.decision, review.edited_text, review.version, review.seconds_spent) == (
        "edit", "A better correction.", 1, 12.5)
    # Saving again from the version now current works.
    assert review_submit(review_id=review.pk, user=annotator, version=1, decision="reject").version == 2


def test_only_the_assigned_annotator_may_save(researcher, annotator, annotators):
    queue = queue_over(make_feedback(1), [annotator], researcher)
    review = review_next(annotator=annotator, queue=queue)
    for someone_else in (annotators[0], researcher):
        with pytest.raises(PermissionDenied):
            review_submit(review_id=review.pk, user=someone_else, version=0, decision="approve")
    assert Review.objects.get(pk=review.pk).decision == "pending"


@pytest.mark.parametrize("text,message", [
    ("", "needs the corrected text"),
    ("   ", "needs the corrected text"),
    (None, "same as the teacher's text"),  # None: the teacher's own text
])
def test_an_edit_must_change_the_text(researcher, annotator, text, message):
    feedback = make_feedback(1)[0]
    queue = queue_over([feedback], [annotator], researcher)
    review = review_next(annotator=annotator, queue=queue)
    with pytest.raises(ReviewError, match=message):
        review_submit(review_id=review.pk, user=annotator, version=0, decision="edit",
                      edited_text=feedback.text + "\n" if text is None else text)


def test_a_salam_edit_must_stay_the_json_object_salam_trains_on(researcher, annotator):
    feedback = make_feedback(1, method="salam", text='{"reason": "r", "guideline": "g"}', fields={})[0]
    queue = queue_over([feedback], [annotator], researcher)
    review = review_next(annotator=annotator, queue=queue)
    with pytest.raises(ReviewError, match="JSON"):
        review_submit(review_id=review.pk, user=annotator, version=0, decision="edit", edited_text="plain words")
    saved = review_submit(review_id=review.pk, user=annotator, version=0, decision="edit",
                          edited_text='{"reason": "r2", "guideline": "g2"}')
    assert saved.decision == "edit"


def test_seconds_are_added_up_and_capped(researcher, annotator):
    queue = queue_over(make_feedback(1), [annotator], researcher)
    review = review_next(annotator=annotator, queue=queue)
    review_submit(review_id=review.pk, user=annotator, version=0, decision="skip", seconds=4)
    review_submit(review_id=review.pk, user=annotator, version=1, decision="approve", seconds=10**6)
    assert Review.objects.get(pk=review.pk).seconds_spent == 4 + 3600


def test_bulk_decide_touches_only_pending_matching_reviews_and_bumps_versions(researcher, annotator):
    passing = make_feedback(3, auto_check=True)
    failing = make_feedback(2, auto_check=False)
    unchecked = make_feedback(1, auto_check=None)
    queue = queue_over(passing + failing + unchecked, [annotator], researcher)
    already = Review.objects.get(queue=queue, feedback=passing[0])
    review_submit(review_id=already.pk, user=annotator, version=0, decision="reject")

    assert reviews_bulk_decide(queue=queue, user=researcher, decision="approve", filter="auto_check_passed") == 2
    decisions = dict(Review.objects.filter(queue=queue).values_list("feedback_id", "decision"))
    assert decisions[passing[0].pk] == "reject"  # decided before: untouched
    assert [decisions[f.pk] for f in passing[1:]] == ["approve", "approve"]
    assert [decisions[f.pk] for f in failing + unchecked] == ["pending"] * 3
    bulk_approved = Review.objects.get(queue=queue, feedback=passing[1])
    assert bulk_approved.version == 1 and bulk_approved.updated_by == researcher
    # The annotator still looking at it from version 0 gets a conflict, not a silent overwrite.
    with pytest.raises(ReviewConflict):
        review_submit(review_id=bulk_approved.pk, user=annotator, version=0, decision="reject")
    assert reviews_bulk_decide(queue=queue, user=researcher, decision="reject", filter="auto_check_failed") == 2


def test_bulk_decide_is_for_researchers_with_a_known_filter(researcher, annotator):
    queue = queue_over(make_feedback(1), [annotator], researcher)
    with pytest.raises(PermissionDenied):
        reviews_bulk_decide(queue=queue, user=annotator, decision="approve", filter="all")
    with pytest.raises(ReviewError):
        reviews_bulk_decide(queue=queue, user=researcher, decision="approve", filter="nonsense")
    with pytest.raises(ReviewError):
        reviews_bulk_decide(queue=queue, user=researcher, decision="edit", filter="all")


def decide(queue, user, feedback, decision, text=""):
    review = Review.objects.get(queue=queue, annotator=user, feedback=feedback)
    review_submit(review_id=review.pk, user=user, version=review.version, decision=decision, edited_text=text)


def test_majority_rule_approves_items_more_annotators_accepted_and_the_latest_edit_wins(researcher, annotators):
    a, b, c = annotators
    items = make_feedback(4)
    queue = queue_over(items, annotators, researcher, per_item=3)
    votes = [
        ("approve", "approve", "reject"),  # 2 of 3 accept: approved, teacher's text
        ("edit", "reject", "reject"),  # 1 of 3: not approved
        ("edit", "approve", "edit"),  # approved; c's edit is the latest
        ("skip", "approve", "reject"),  # a tie among those who decided: not approved under majority
    ]
    for item, decisions in zip(items, votes):
        for user, decision in zip((a, b, c), decisions):
            decide(queue, user, item, decision, text=f"edit by {user.username}" if decision == "edit" else "")
    approved = dict((f.pk, text) for f, text in approved_feedback(queue=queue))
    assert approved == {items[0].pk: items[0].text, items[2].pk: "edit by ann-3"}
    any_rule = dict((f.pk, text) for f, text in approved_feedback(queue=queue, rule="any"))
    assert any_rule == {items[0].pk: items[0].text, items[1].pk: "edit by ann-1", items[2].pk: "edit by ann-3",
                        items[3].pk: items[3].text}
