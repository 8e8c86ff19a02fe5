"""In a real browser: an annotator reviews three items with the keyboard only; each next item arrives without a reload."""

from __future__ import annotations

import pytest

from pipeline.seeds.salam_finetune import render_output
from tests.conftest import PASSWORD
from tests.webapp.review.conftest import make_feedback
from webapp.review.models import Review
from webapp.review.services import queue_create, review_submit

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def shown_review(page) -> str:
    return page.eval_on_selector("#review-item", "element => element.dataset.review || ''")


def wait_until_ready(page) -> None:
    """The item is shown and htmx has taken over the page (before that, a key would submit the form natively)."""
    page.wait_for_selector("#review-item")
    page.wait_for_function("window.htmx !== undefined && document.readyState === 'complete'")


def sign_in_at(page, url: str, user) -> None:
    """Open ``url``, sign in on the login page it sends you to, and wait for the item."""
    page.goto(url)
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    wait_until_ready(page)


def type_in_the_editor(page, box: str, words: str, diff: str = "#diff") -> None:
    """Open the editor with e, type at the end of its first box (``box``), and see the words in the live diff."""
    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.id") == box
    page.keyboard.type(words)
    page.wait_for_selector(f"{diff} ins")
    assert words.strip() in page.inner_text(f"{diff} ins")


def wait_for_review(page, review: Review | None) -> None:
    expected = str(review.pk) if review else ""
    page.wait_for_function(f"(document.querySelector('#review-item').dataset.review || '') === '{expected}'")


def test_an_annotator_reviews_three_items_with_the_keyboard_only(live_errata, browser_page, researcher, annotator):
    feedback = make_feedback(3)
    queue = queue_create(name="keyboard queue", feedback=feedback, annotators=[annotator], user=researcher)
    first, second, third = Review.objects.filter(queue=queue).order_by("position")
    page = browser_page

    page.goto(f"{live_errata}/review/queues/{queue.pk}/work/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", annotator.username)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    wait_until_ready(page)  # signed in and sent on to the queue
    assert page.url == f"{live_errata}/review/queues/{queue.pk}/work/"
    assert shown_review(page) == str(first.pk)
    page.evaluate("window.reviewMarker = 'same page'")  # survives only if nothing reloads the page
    page.locator("body").focus()
    page.wait_for_timeout(300)  # a little time on the item

    page.keyboard.press("a")
    wait_for_review(page, second)
    assert page.url.endswith(f"/review/items/{second.pk}/")  # the address follows the item

    type_in_the_editor(page, "edited-text", " Check the carry as well.")
    page.keyboard.press("Control+Enter")
    wait_for_review(page, third)

    page.keyboard.press("c")
    page.keyboard.type("The step is right; the teacher is wrong.")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.wait_for_selector("#review-done")
    assert "All done" in page.inner_text("#review-item")

    assert page.evaluate("window.reviewMarker") == "same page"
    assert page.url.endswith(f"/review/queues/{queue.pk}/work/")
    saved = {review.pk: review for review in Review.objects.filter(queue=queue)}
    assert [saved[r.pk].decision for r in (first, second, third)] == ["approve", "edit", "reject"]
    assert saved[second.pk].edited_text == second.feedback.text + " Check the carry as well."
    assert saved[third.pk].comment == "The step is right; the teacher is wrong."
    assert all(saved[r.pk].version == 1 for r in (first, second, third))
    assert saved[first.pk].seconds_spent >= 0.3  # the page sent the time since the item was shown


def test_a_save_from_another_tab_shows_a_conflict_and_the_item_reloads(live_errata, browser_page, researcher, annotator):
    feedback = make_feedback(2)
    queue = queue_create(name="conflict queue", feedback=feedback, annotators=[annotator], user=researcher)
    first = Review.objects.filter(queue=queue).order_by("position").first()
    page = browser_page
    sign_in_at(page, f"{live_errata}/review/items/{first.pk}/", annotator)
    page.evaluate("window.reviewMarker = 'same page'")

    # Meanwhile the same item is saved in another tab.
    review_submit(review_id=first.pk, user=annotator, version=0, decision="edit", edited_text="Saved in the other tab.")
    page.locator("body").focus()
    page.keyboard.press("a")
    page.wait_for_selector("#review-conflict")
    assert "Saved in the other tab." in page.inner_text("#conflict-current")
    assert Review.objects.get(pk=first.pk).decision == "edit"  # nothing was overwritten

    page.keyboard.press("l")  # reload the item: it now shows the saved decision, ready to decide again
    page.wait_for_selector("#review-conflict", state="detached")
    assert "now approved with edits" in page.inner_text("#review-counts")
    page.keyboard.press("a")
    page.wait_for_selector("#review-done, #review-item[data-review]:not([data-review='%d'])" % first.pk)
    assert page.evaluate("window.reviewMarker") == "same page"
    saved = Review.objects.get(pk=first.pk)
    assert (saved.decision, saved.version) == ("approve", 2)


def test_a_salam_edit_goes_reason_guideline_comment_with_the_keyboard(live_errata, browser_page, researcher, annotator):
    fields = {"reason": "The model assumed the older man dislikes change.", "guideline": "Answer from the text."}
    feedback = make_feedback(1, method="salam", fields=fields, text=render_output(**fields), auto_check=None)
    queue = queue_create(name="salam queue", feedback=feedback, annotators=[annotator], user=researcher)
    review = queue.reviews.get()
    page = browser_page
    sign_in_at(page, f"{live_errata}/review/items/{review.pk}/", annotator)
    page.locator("body").focus()

    type_in_the_editor(page, "edit-reason", " It leaned on an age stereotype.", diff="#diff-reason")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "edit-guideline"
    page.keyboard.press("Control+End")
    page.keyboard.type(" If it does not say, say so.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "review-comment"
    page.keyboard.type("Named the stereotype.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#review-done")

    saved = Review.objects.get(pk=review.pk)
    assert (saved.decision, saved.comment) == ("edit", "Named the stereotype.")
    assert saved.edited_text == render_output(fields["reason"] + " It leaned on an age stereotype.",
                                              fields["guideline"] + " If it does not say, say so.")
