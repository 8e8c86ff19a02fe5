"""The two halves of a FAIR round (feedback and rationale file) import onto the same wrong answers, in either order."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from webapp.datasets.models import Dataset, Problem
from webapp.gather.models import Attempt
from webapp.review.models import Review
from webapp.review.services import queue_create, reviews_bulk_decide, training_data_export
from webapp.runs.models import Run, RunEvent, RunKind
from webapp.teach.imports import feedback_import
from webapp.teach.models import Feedback

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "seeds" / "fair"
FEEDBACK = FIXTURES / "Tiny-student_svamp_feedback_round0.json"
RATIONALE = FIXTURES / "Tiny-student_svamp_rationale_round0.json"
TEACHERS = ("gpt", "gemini", "mistral")


def rows_of(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def import_both(first: Path, second: Path) -> Run:
    earlier = feedback_import(path=first)
    joined = feedback_import(path=second)
    assert joined == earlier
    return joined


def table() -> list[tuple]:
    """Every Feedback as comparable values, in the order of the file's rows and teachers."""
    return [(f.problem.external_id, f.attempt.raw_output, f.teacher_name, f.fields, f.text, f.raw_output, f.peer_scores,
             f.peer_mean, f.peer_accepted)
            for f in Feedback.objects.select_related("problem", "attempt").order_by("problem__position", "teacher_name")]


BOTH_ORDERS = pytest.mark.parametrize("first,second", [(FEEDBACK, RATIONALE), (RATIONALE, FEEDBACK)],
                                      ids=["feedback_first", "rationale_first"])


@BOTH_ORDERS
def test_the_second_half_joins_the_first_halfs_dataset_wrong_answers_and_feedback(first, second):
    run = import_both(first, second)
    assert Dataset.objects.count() == 1 and Problem.objects.count() == 3 == Attempt.objects.count()
    assert Run.objects.filter(kind=RunKind.TEACH).count() == 1 and Run.objects.filter(kind=RunKind.GATHER).count() == 1
    assert Feedback.objects.count() == 3 * 3 == run.counts["feedback"]
    second_format = "fair_rationale" if first == FEEDBACK else "fair_feedback"
    assert (run.config["imported"]["file"], run.config["merged"][second_format]["file"]) == (first.name, second.name)
    assert run.name == f"Imported {first.name} + {second.name}"
    feedback_rows, rationale_rows = {r["id"]: r for r in rows_of(FEEDBACK)}, {r["id"]: r for r in rows_of(RATIONALE)}
    for item in Feedback.objects.select_related("problem"):
        teacher, row_id = item.teacher_name.removeprefix("imported:"), int(item.problem.external_id)
        written = feedback_rows[row_id][f"{teacher}_feedback"]
        rationale, *scores = rationale_rows[row_id][f"{teacher}_rationale"]
        # As a FAIR teacher run writes it: the feedback is the text to train on, the rationale a field beside it.
        assert (item.text, item.fields["feedback"], item.fields["rationale"]) == (written, written, rationale)
        assert item.raw_output == f"{written}\n\n{rationale}"
        assert list(item.fields) == ["feedback", "rationale", *(["peer_scores"] if 0 in scores else [])]
        assert item.peer_accepted == (rationale in rationale_rows[row_id]["correct_rationale"])
    assert run.counts["peer_accepted"] == 6 and (run.counts["fair_rule_agrees"], run.counts["fair_rule_differs"]) == (9, 0)


def test_either_order_gives_the_same_feedback():
    import_both(FEEDBACK, RATIONALE)
    feedback_first = table()
    for model in (Feedback, Run, Dataset):
        model.objects.all().delete()
    import_both(RATIONALE, FEEDBACK)
    assert table() == feedback_first


def test_out_of_range_and_missing_peer_scores_are_kept_as_fair_wrote_them():
    import_both(FEEDBACK, RATIONALE)
    gemini = Feedback.objects.get(problem__external_id="3", teacher_name="imported:gemini")
    assert (gemini.peer_scores, gemini.peer_mean, gemini.peer_accepted) == ({"peer 1": 4, "peer 2": None}, 4.0, True)
    assert gemini.fields["peer_scores"] == {"peer 1": 4, "peer 2": 0}  # 0 is no valid score; the FAIR export writes it back
    unreadable = Feedback.objects.get(problem__external_id="0", teacher_name="imported:gemini")
    assert unreadable.peer_scores == {"peer 1": 4, "peer 2": None} and "peer_scores" not in unreadable.fields


@pytest.mark.parametrize("order", [(FEEDBACK, RATIONALE, FEEDBACK, RATIONALE), (RATIONALE, FEEDBACK, RATIONALE, FEEDBACK)])
def test_importing_both_halves_again_adds_nothing(order):
    run = import_both(*order[:2])
    before = table(), Run.objects.count(), RunEvent.objects.count()
    assert [feedback_import(path=path) for path in order[2:]] == [run, run]
    assert (table(), Run.objects.count(), RunEvent.objects.count()) == before


def test_a_teacher_only_in_the_rationale_file_gets_its_own_feedback_on_the_same_wrong_answer(tmp_path):
    rows = [{key: value for key, value in row.items() if key != "mistral_feedback"} for row in rows_of(FEEDBACK)]
    two_teachers = tmp_path / FEEDBACK.name
    two_teachers.write_text(json.dumps(rows, indent=4))
    run = import_both(two_teachers, RATIONALE)
    mistral = Feedback.objects.filter(teacher_name="imported:mistral").select_related("attempt")
    assert mistral.count() == 3 and {f.run_id for f in mistral} == {run.pk}
    assert {f.attempt.run_id for f in mistral} == {run.config["gather_run_id"]}
    assert all("feedback" not in f.fields and f.text == f.fields["rationale"] for f in mistral)


def test_a_half_about_other_wrong_answers_imports_on_its_own_and_says_why(tmp_path):
    rows = rows_of(RATIONALE)
    rows[1]["student_wrong_pred"] = "Answer:\n5 + 9 = 14"  # another wrong answer to the same problem
    other = tmp_path / RATIONALE.name
    other.write_text(json.dumps(rows, indent=4))
    first, second = feedback_import(path=FEEDBACK), feedback_import(path=other)
    assert second != first and "merged" not in first.config and Dataset.objects.count() == 2
    warning = RunEvent.objects.get(run=second, level=RunEvent.Level.WARNING).message
    assert f"1 of its 3 rows (FAIR id, question, student_wrong_pred) are not in {FEEDBACK.name}" in warning


def test_the_same_rows_under_another_name_still_join(tmp_path):
    renamed = tmp_path / "committee_rationales.json"
    shutil.copy(RATIONALE, renamed)
    assert import_both(FEEDBACK, renamed).config["merged"]["fair_rationale"]["file"] == "committee_rationales.json"


def test_a_rationale_already_under_review_is_logged_when_the_feedback_takes_over_its_text(researcher, annotator):
    run = feedback_import(path=RATIONALE)
    queue_create(name="rationales", feedback=Feedback.objects.filter(run=run, problem__external_id="0"),
                 annotators=[annotator], user=researcher)
    feedback_import(path=FEEDBACK)
    warning = RunEvent.objects.get(run=run, level=RunEvent.Level.WARNING).message
    assert warning.startswith("3 rationales already in a review queue now train on the teacher's feedback")


def test_the_command_says_the_file_joined_the_other_halfs_run(capsys):
    call_command("import_feedback", str(FEEDBACK))
    call_command("import_feedback", str(RATIONALE))
    out = capsys.readouterr().out
    assert f"it joined run #{Run.objects.get(kind=RunKind.TEACH).pk}" in out
    assert "9 feedback (imported:gemini 3, imported:gpt 3, imported:mistral 3)" in out.splitlines()[-1]


@BOTH_ORDERS
def test_the_fair_rows_export_of_approved_items_is_both_files_rows_in_one(researcher, annotator, tmp_path, first, second):
    run = import_both(first, second)
    queue = queue_create(name="committee", feedback=Feedback.objects.filter(run=run), annotators=[annotator],
                         user=researcher)
    reviews_bulk_decide(queue=queue, user=researcher, decision="approve", filter="all")
    assert Review.objects.filter(queue=queue, decision="approve").count() == 9
    summary = training_data_export(format="fair", path=tmp_path / "fair.json", queue=queue)
    exported = json.loads((tmp_path / "fair.json").read_text(encoding="utf-8"))
    assert summary.written == 9
    assert exported == [{**feedback_row, **rationale_row}
                        for feedback_row, rationale_row in zip(rows_of(FEEDBACK), rows_of(RATIONALE))]
    assert all(f"{teacher}_feedback" in row and f"{teacher}_rationale" in row for row in exported for teacher in TEACHERS)


@pytest.mark.shared
def test_the_released_svamp_round_imports_as_one_committee(shared_dir):
    folder = shared_dir / "seed-data" / "fair"
    feedback_path = folder / "Llama-2-7b-chat-hf_svamp_feedback_round0.json"
    rationale_path = folder / "Llama-2-7b-chat-hf_svamp_rationale_round0.json"
    run = import_both(rationale_path, feedback_path)
    assert Attempt.objects.count() == 387 and Feedback.objects.count() == 3 * 387 == run.counts["feedback"]
    assert run.counts["peer_accepted"] == 826 and run.counts["fair_rule_differs"] == 0
    rationales = {str(row["id"]): row for row in rows_of(rationale_path)}
    for item in Feedback.objects.select_related("problem").iterator():
        rationale = rationales[item.problem.external_id][f"{item.teacher_name.removeprefix('imported:')}_rationale"][0]
        assert item.text == item.fields["feedback"] and item.fields["rationale"] == rationale
    assert feedback_import(path=feedback_path) == run == feedback_import(path=rationale_path)
    assert Feedback.objects.count() == 3 * 387
