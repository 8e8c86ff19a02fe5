"""Training sets: built from approved reviews (per target), a gather run, or a file; traced; whole or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.training.data import read_jsonl
from tests.webapp.review.conftest import make_feedback
from tests.webapp.train.conftest import approved_queue, salam_feedback
from webapp.review.models import Decision, Review
from webapp.train.models import TrainingExample, TrainingSet
from webapp.train.sets import (
    TrainingSetError, training_set_from_file, training_set_from_gather, training_set_from_queue,
)


def test_salam_assistant_examples_are_question_and_wrong_answer_to_the_approved_feedback(annotator):
    feedback = salam_feedback(3)
    queue = approved_queue(feedback, annotator, decisions=[Decision.APPROVE, Decision.REJECT, Decision.APPROVE])
    built = training_set_from_queue(name="salam", target="salam_assistant", queue=queue, validation_share=0)
    rows = list(TrainingExample.objects.filter(training_set=built).order_by("position"))
    assert len(rows) == 2  # the rejected one is not there
    assert {row.feedback_id for row in rows} == {feedback[0].pk, feedback[2].pk}
    messages = rows[0].data["messages"]
    assert messages[-1]["role"] == "assistant"
    assert json.loads(messages[-1]["content"]) == {"reason": "added instead of counting", "guideline": "count what is left"}
    assert "apples" in messages[0]["content"]  # the question is in the prompt
    assert read_jsonl(built.train_file)[0].messages == tuple(messages)


def test_every_example_points_back_to_its_feedback_mistake_and_reviews(annotator):
    feedback = make_feedback(4)
    queue = approved_queue(feedback, annotator)
    built = training_set_from_queue(name="lema", target="lema_student", queue=queue, validation_share=0.25)
    rows = TrainingExample.objects.filter(training_set=built)
    assert rows.count() == 4 and built.counts["train"] + built.counts["validation"] == 4
    assert built.counts["validation"] >= 1
    for row in rows:
        review = Review.objects.get(queue=queue, feedback_id=row.feedback_id)
        assert row.reviews == [review.pk]
        assert row.attempt_id == row.feedback.attempt_id


def test_an_edit_trains_on_the_edited_text(annotator):
    feedback = make_feedback(2)
    queue = approved_queue(feedback, annotator, decisions=[Decision.EDIT, Decision.APPROVE])
    built = training_set_from_queue(name="edits", target="lema_student", queue=queue, validation_share=0)
    targets = [row.data["messages"][-1]["content"] for row in TrainingExample.objects.filter(training_set=built)]
    assert any(text.endswith("(checked)") for text in targets)


def test_dpo_pairs_put_the_correction_over_the_wrong_answer(annotator):
    feedback = make_feedback(3)
    queue = approved_queue(feedback, annotator)
    built = training_set_from_queue(name="dpo", target="dpo", queue=queue, validation_share=0)
    pair = TrainingExample.objects.filter(training_set=built).first().data
    assert set(pair) >= {"prompt", "chosen", "rejected"}
    assert pair["rejected"] == feedback[0].attempt.raw_output or pair["rejected"] in {f.attempt.raw_output for f in feedback}


def test_a_queue_without_approved_items_for_the_target_is_refused_and_leaves_nothing(annotator, settings, tmp_path):
    settings.ERRATA_ARTIFACTS_DIR = tmp_path
    queue = approved_queue(make_feedback(2), annotator)  # LEMA items only
    with pytest.raises(TrainingSetError, match="salam"):
        training_set_from_queue(name="none", target="salam_assistant", queue=queue)
    assert not TrainingSet.objects.exists()
    assert not any((tmp_path / "training-sets").glob("*")) if (tmp_path / "training-sets").exists() else True


def test_a_failure_while_writing_rolls_back_rows_and_files(annotator, settings, tmp_path, monkeypatch):
    settings.ERRATA_ARTIFACTS_DIR = tmp_path
    queue = approved_queue(make_feedback(3), annotator)
    from webapp.train import sets

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sets.TrainingExample.objects, "bulk_create", broken)
    with pytest.raises(OSError, match="disk full"):
        training_set_from_queue(name="broken", target="lema_student", queue=queue)
    assert not TrainingSet.objects.exists()
    assert list((tmp_path / "training-sets").glob("*")) == []


def test_gsi_iteration_takes_every_correct_answer_of_a_gather_run(db):
    from webapp.gather.models import Attempt

    wrong = make_feedback(3)[0].attempt
    run = wrong.run
    for i, attempt in enumerate(Attempt.objects.filter(run=run)[:2]):
        Attempt.objects.filter(pk=attempt.pk).update(correct=True, raw_output=f"right answer {i}")
    built = training_set_from_gather(name="gsi", run=run, validation_share=0)
    rows = TrainingExample.objects.filter(training_set=built)
    assert rows.count() == 2 and {r.data["messages"][-1]["content"] for r in rows} == {"right answer 0", "right answer 1"}


def test_a_gather_run_without_correct_answers_is_refused(db):
    run = make_feedback(1)[0].attempt.run
    with pytest.raises(TrainingSetError, match="no correct answers"):
        training_set_from_gather(name="none", run=run)


@pytest.mark.parametrize("content, kind, count", [
    ('{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}\n', "imported", 1),
    ('{"prompt": "2+2?", "completion": "4"}\n{"prompt": "3+3?", "completion": "6"}\n', "imported", 2),
    ('{"prompt": "2+2?", "chosen": "4", "rejected": "5"}\n', "dpo", 1),
    ('{"type": "text2text", "instances": [{"input": "q", "output": "{\\"reason\\": \\"r\\"}"}]}', "imported", 1),
])
def test_files_in_each_format_become_sets(db, tmp_path, content, kind, count):
    path = tmp_path / "data.jsonl"
    path.write_text(content)
    built = training_set_from_file(name="file", path=path, validation_share=0)
    assert built.target == kind and built.counts["train"] == count


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ('{"prompt": "a", "completion": "b"}\nnot json\n', "line 2"),
    ('{"messages": [{"role": "user", "content": "a"}]}\n', "line 1"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]}\n', "role"),
    ('{"prompt": "a", "completion": "b"}\n{"prompt": "a", "chosen": "b", "rejected": "c"}\n', "one format"),
    ('{"question": "a"}\n', "not a training row"),
])
def test_malformed_files_are_refused_naming_the_row(db, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(TrainingSetError, match=message):
        training_set_from_file(name="bad", path=path)
    assert not TrainingSet.objects.exists()


def test_the_files_hold_what_the_rows_hold(annotator):
    queue = approved_queue(make_feedback(5), annotator)
    built = training_set_from_queue(name="files", target="lema_student", queue=queue, validation_share=0.2)
    from_files = len(read_jsonl(built.train_file)) + (len(read_jsonl(built.validation_file)) if built.validation_file else 0)
    assert from_files == TrainingExample.objects.filter(training_set=built).count() == 5
    assert Path(built.train_file).parent.name == f"set-{built.pk}"
