"""export_training_data: a queue's or a teacher run's approved feedback, written in each export format."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from tests.webapp.review.conftest import make_feedback
from webapp.review.models import Review
from webapp.review.services import queue_create, review_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed(researcher, annotator):
    """A LEMA queue with one approved, one edited and one rejected item."""
    items = make_feedback(3)
    queue = queue_create(name="q", feedback=items, annotators=[annotator], user=researcher)
    for review, (decision, text) in zip(Review.objects.filter(queue=queue).order_by("position"),
                                        [("approve", ""), ("edit", "Edited by a human."), ("reject", "")]):
        review_submit(review_id=review.pk, user=annotator, version=0, decision=decision, edited_text=text)
    return queue, items


def test_it_writes_lema_jsonl_with_the_edited_text(reviewed, tmp_path, capsys):
    queue, items = reviewed
    out = tmp_path / "lema.jsonl"
    call_command("export_training_data", "--queue", str(queue.pk), "--format", "lema", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["completion"] for row in rows] == [items[0].text, "Edited by a human."]
    assert items[0].attempt.raw_output in rows[0]["prompt"]
    assert "Wrote 2 approved items" in capsys.readouterr().out


@pytest.mark.parametrize("format,key", [("chat", "messages"), ("dpo", "chosen")])
def test_it_writes_the_trl_formats(reviewed, tmp_path, format, key):
    queue, _ = reviewed
    out = tmp_path / f"{format}.jsonl"
    call_command("export_training_data", "--queue", str(queue.pk), "--format", format, str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(key in row for row in rows)


def test_a_teacher_runs_approved_feedback_over_all_its_queues(reviewed, tmp_path):
    _, items = reviewed
    out = tmp_path / "run.jsonl"
    call_command("export_training_data", "--run", str(items[0].run_id), "--format", "chat", str(out))
    assert len(out.read_text().splitlines()) == 2


def test_salam_feedback_exports_as_salam_finetune_data(researcher, annotator, tmp_path):
    feedback = make_feedback(1, method="salam", fields={"reason": "r", "guideline": "g"},
                             text='{"reason": "r", "guideline": "g"}')
    queue = queue_create(name="salam", feedback=feedback, annotators=[annotator], user=researcher)
    review = queue.reviews.get()
    review_submit(review_id=review.pk, user=annotator, version=0, decision="edit",
                  edited_text='{"reason": "better reason", "guideline": "g"}')
    out = tmp_path / "salam.json"
    call_command("export_training_data", "--queue", str(queue.pk), "--format", "salam_finetune", str(out))
    data = json.loads(out.read_text())
    assert data["type"] == "text2text"
    assert json.loads(data["instances"][0]["output"]) == {"reason": "better reason", "guideline": "g"}


def test_fair_feedback_exports_as_fair_rows(researcher, annotator, tmp_path):
    first = make_feedback(1, method="fair", teacher="gpt", fields={"feedback": "f1", "rationale": "because"},
                          text="f1", auto_check=None, peer_scores={"claude": 4}, peer_accepted=True)[0]
    make_feedback(1, attempt=first.attempt, method="fair", teacher="claude", fields={"feedback": "f2"}, text="f2",
                  auto_check=None)
    queue = queue_create(name="fair", feedback=first.attempt.feedback.all(), annotators=[annotator], user=researcher)
    for review in queue.reviews.all():
        review_submit(review_id=review.pk, user=annotator, version=0, decision="approve")
    out = tmp_path / "fair.json"
    call_command("export_training_data", "--queue", str(queue.pk), "--format", "fair", str(out))
    [row] = json.loads(out.read_text())
    assert row["gpt_feedback"] == "f1" and row["claude_feedback"] == "f2"
    assert row["gpt_rationale"] == ["because", 4]


def test_nothing_approved_or_an_unknown_queue_is_an_error(researcher, annotator, tmp_path):
    queue = queue_create(name="q", feedback=make_feedback(1), annotators=[annotator], user=researcher)
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("export_training_data", "--queue", str(queue.pk), "--format", "lema", str(tmp_path / "x.jsonl"))
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(CommandError, match="no review queue"):
        call_command("export_training_data", "--queue", "999999", "--format", "lema", str(tmp_path / "x.jsonl"))
