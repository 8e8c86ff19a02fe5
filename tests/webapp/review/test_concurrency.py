"""Two saves of one review from the same starting version, at the same time, on real database connections."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from tests.webapp.review.conftest import make_feedback
from webapp.review.models import Review
from webapp.review.services import ReviewConflict, queue_create, review_submit


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_saves_from_one_version_one_wins_and_the_other_sees_a_conflict(researcher, annotator):
    queue = queue_create(name="q", feedback=make_feedback(1), annotators=[annotator], user=researcher)
    review = Review.objects.get(queue=queue)
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def save(tab: str, decision: str, text: str) -> None:
        try:
            start.wait(timeout=10)
            outcomes[tab] = review_submit(review_id=review.pk, user=annotator, version=0, decision=decision,
                                          edited_text=text)
        except ReviewConflict as conflict:
            outcomes[tab] = conflict
        finally:
            connection.close()  # each thread has its own connection

    tabs = [threading.Thread(target=save, args=("one", "edit", "Tab one's words.")),
            threading.Thread(target=save, args=("two", "edit", "Tab two's words."))]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join(timeout=30)

    conflicts = [tab for tab, outcome in outcomes.items() if isinstance(outcome, ReviewConflict)]
    winners = [tab for tab, outcome in outcomes.items() if isinstance(outcome, Review)]
    assert len(conflicts) == 1 and len(winners) == 1, outcomes
    saved = Review.objects.get(pk=review.pk)
    assert saved.version == 1
    assert saved.edited_text == outcomes[winners[0]].edited_text  # the winner's words, not lost and not mixed
    assert outcomes[conflicts[0]].current.edited_text == saved.edited_text  # the loser is shown what was saved
