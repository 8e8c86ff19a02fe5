"""Exports of approved items that a format cannot pair: LbT rationales have no wrong answer for DPO to reject."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from pipeline.exports import ExportError
from tests.webapp.review.conftest import make_feedback
from webapp.review.selectors import approved_items
from webapp.review.services import queue_create, reviews_bulk_decide, training_data_export
from webapp.teach.models import Feedback

pytestmark = pytest.mark.django_db
NOTE = "2 approved items have no wrong answer to reject (an LbT rationale answers the problem itself)"


def lbt_rationales(count: int) -> list[Feedback]:
    """LbT rationales as a teacher run writes them: about a problem, with no mistake."""
    made = make_feedback(count, method="lbt", fields={"rationale": "2 + 3 = 5", "answer": "5"}, text="2 + 3 = 5. The answer is 5.")
    Feedback.objects.filter(pk__in=[f.pk for f in made]).update(attempt=None)
    return made


@pytest.fixture
def mixed_queue(researcher, annotator):
    """Approved: two LEMA corrections (each on a wrong answer) and two LbT rationales (none)."""
    feedback = make_feedback(2) + lbt_rationales(2)
    queue = queue_create(name="mixed", feedback=Feedback.objects.filter(pk__in=[f.pk for f in feedback]),
                         annotators=[annotator], user=researcher)
    reviews_bulk_decide(queue=queue, user=researcher, decision="approve", filter="all")
    return queue


def read_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_an_lbt_item_reaches_the_exports_with_no_wrong_answer(mixed_queue):
    items = approved_items(queue=mixed_queue)
    assert [(item.method, item.has_wrong_answer) for item in items] == [("lema", True)] * 2 + [("lbt", False)] * 2
    assert all(item.wrong.output == "" and item.wrong.extracted is None for item in items[2:])


def test_dpo_pairs_only_the_items_with_a_wrong_answer_and_counts_the_rest(mixed_queue, tmp_path):
    summary = training_data_export(format="dpo", path=tmp_path / "dpo.jsonl", queue=mixed_queue)
    rows = read_jsonl((tmp_path / "dpo.jsonl").read_text())
    assert (summary.written, summary.no_wrong_answer) == (2, 2) and len(rows) == 2
    assert all(row["rejected"].startswith("He has ") for row in rows)  # the student's wrong answers, never empty
    assert summary.note.startswith(NOTE)


def test_sft_formats_keep_the_lbt_items(mixed_queue, tmp_path):
    summary = training_data_export(format="chat", path=tmp_path / "chat.jsonl", queue=mixed_queue)
    assert (summary.written, summary.no_wrong_answer, summary.note) == (4, 0, "")


def test_a_queue_of_lbt_items_only_has_no_dpo_pairs_and_says_why(researcher, annotator, tmp_path):
    queue = queue_create(name="lbt", feedback=Feedback.objects.filter(pk__in=[f.pk for f in lbt_rationales(2)]),
                         annotators=[annotator], user=researcher)
    reviews_bulk_decide(queue=queue, user=researcher, decision="approve", filter="all")
    with pytest.raises(ExportError, match=re.escape(f"nothing to export as dpo: {NOTE}")):
        training_data_export(format="dpo", path=tmp_path / "dpo.jsonl", queue=queue)
    assert not (tmp_path / "dpo.jsonl").exists()


def test_the_command_reports_the_left_out_items(mixed_queue, tmp_path, capsys):
    call_command("export_training_data", "--queue", str(mixed_queue.pk), "--format", "dpo", str(tmp_path / "dpo.jsonl"))
    out = capsys.readouterr().out
    assert "Wrote 2 approved items" in out and NOTE in out
    call_command("export_training_data", "--queue", str(mixed_queue.pk), "--format", "lema", str(tmp_path / "l.jsonl"))
    assert "no wrong answer" not in capsys.readouterr().out


def test_downloads_report_the_left_out_items_in_headers(researcher_client, mixed_queue):
    for url in (reverse("review:export", args=[mixed_queue.pk]) + "?format=dpo",
                f"/api/review-queues/{mixed_queue.pk}/export/?format=dpo"):
        response = researcher_client.get(url)
        assert response.status_code == 200
        assert (response["X-Errata-Exported"], response["X-Errata-Left-Out"]) == ("2", "2")
        assert response["X-Errata-Note"].startswith(NOTE)
        assert len(read_jsonl(b"".join(response.streaming_content).decode())) == 2
    chat = researcher_client.get(f"/api/review-queues/{mixed_queue.pk}/export/?format=chat")
    assert (chat["X-Errata-Exported"], chat["X-Errata-Left-Out"]) == ("4", "0") and "X-Errata-Note" not in chat


def test_the_api_says_why_a_dpo_export_of_lbt_items_only_is_empty(researcher_client, researcher, annotator):
    queue = queue_create(name="lbt", feedback=Feedback.objects.filter(pk__in=[f.pk for f in lbt_rationales(2)]),
                         annotators=[annotator], user=researcher)
    reviews_bulk_decide(queue=queue, user=researcher, decision="approve", filter="all")
    response = researcher_client.get(f"/api/review-queues/{queue.pk}/export/?format=dpo")
    assert response.status_code == 400 and NOTE in response.json()["detail"]
    with pytest.raises(CommandError, match="no wrong answer to reject"):
        call_command("export_training_data", "--queue", str(queue.pk), "--format", "dpo", "/nonexistent/dpo.jsonl")


def test_the_queue_page_says_before_the_download_that_dpo_leaves_lbt_items_out(researcher_client, mixed_queue):
    html = researcher_client.get(reverse("review:queue", args=[mixed_queue.pk])).content.decode()
    assert "2 items in this queue have no wrong answer to reject" in html and "the dpo export leaves them out" in html
    plain = queue_create(name="plain", feedback=make_feedback(1), annotators=list(mixed_queue.annotators.all()))
    assert 'id="export-note"' not in researcher_client.get(reverse("review:queue", args=[plain.pk])).content.decode()


def test_imported_teachers_go_by_the_name_in_their_file(researcher, annotator):
    feedback = make_feedback(1, method="fair", teacher="imported:gpt", fields={"feedback": "f"}, text="f", auto_check=None)
    queue = queue_create(name="fair", feedback=feedback, annotators=[annotator], user=researcher)
    reviews_bulk_decide(queue=queue, user=researcher, decision="approve", filter="all")
    assert [item.teacher for item in approved_items(queue=queue)] == ["gpt"]
