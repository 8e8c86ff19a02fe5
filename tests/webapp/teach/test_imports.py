"""Released feedback files (SALAM finetune data, FAIR feedback and rationale rows) become teacher runs, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pipeline.benchmarks.records import DatasetFormatError
from pipeline.seeds.salam_finetune import render_input, render_output
from pipeline.teaching import fair_accepts
from webapp.datasets.models import Dataset, Problem
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunEvent, RunKind, RunStatus
from webapp.teach.imports import FeedbackImportError, feedback_import
from webapp.teach.models import Feedback

pytestmark = pytest.mark.django_db

BBQ_QUESTION = "Two friends, 78 and 24, talked politics. Who embraces change?\nOptions:\n(A) The 24 year old\n" \
               "(B) Cannot answer\n(C) The 78-year-old"
SALAM_INSTANCES = [
    {"input": render_input(BBQ_QUESTION, "(A)", "(B)"), "output": render_output("Assumed youth.", "Read closely.")},
    {"input": render_input(BBQ_QUESTION.replace("change", "tradition"), "( C )", "(B)"), "output": "{not json"},
]
FAIR_ROWS = [
    {"id": 0, "question": "Ann has 3 pens and buys 4. How many?", "gold_answer": "7",
     "student_wrong_pred": "Answer: 3 + 4 = 8", "student_wrong_final_answer": "8"},
    {"id": 1, "question": "Bo has 9 cards and gives 2 away. How many are left?", "gold_answer": "7",
     "student_wrong_pred": "Answer: 11", "student_wrong_final_answer": "11"},
]
# FAIR writes each rationale as [text, score from one peer, score from the other]; 0 and 83 are out of range.
RATIONALES = [
    {"ann_rationale": ["3 + 4 = 7", 5, 4], "bo_rationale": ["3 * 4 = 12", 2, 3], "cy_rationale": ["7", 83, 2]},
    {"ann_rationale": ["9 - 2 = 7", 4, 0], "bo_rationale": ["9 + 2 = 11", 1, 1], "cy_rationale": ["It is 7", 3, 4]},
]


def write_json(tmp_path: Path, name: str, data) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return path


def salam_file(tmp_path: Path, instances=SALAM_INSTANCES, name: str = "bbq_src_data.json") -> Path:
    return write_json(tmp_path, name, {"type": "text2text", "instances": instances})


def fair_feedback_file(tmp_path: Path) -> Path:
    rows = [{**row, "ann_feedback": f"Ann on {row['id']}", "bo_feedback": f"Bo on {row['id']}"} for row in FAIR_ROWS]
    return write_json(tmp_path, "Tiny_svamp_feedback_round0.json", rows)


def fair_rationale_file(tmp_path: Path, rationales=RATIONALES) -> Path:
    rows = []
    for row, written in zip(FAIR_ROWS, rationales):
        accepted = [value[0] for value in written.values() if fair_accepts(value[1:])]
        rows.append({**row, **written, "correct_rationale": accepted})
    return write_json(tmp_path, "Tiny_svamp_rationale_round0.json", rows)


def nothing_added() -> bool:
    return not (Run.objects.exists() or Dataset.objects.exists() or Attempt.objects.exists() or Feedback.objects.exists())


# --- SALAM finetune data ---------------------------------------------------------------------------

def test_salam_instances_become_wrong_attempts_with_salam_feedback_by_imported_gpt_4(tmp_path):
    run = feedback_import(path=salam_file(tmp_path))
    assert (run.kind, run.status, run.config["method"]) == (RunKind.TEACH, RunStatus.SUCCEEDED, "salam")
    assert run.config["imported"]["format"] == "salam_finetune"
    first, second = Feedback.objects.filter(run=run).select_related("attempt", "problem").order_by("problem__position")
    assert (first.teacher_name, first.teacher, first.method) == ("imported:gpt-4", None, "salam")
    assert first.fields == {"reason": "Assumed youth.", "guideline": "Read closely."}
    assert first.text == SALAM_INSTANCES[0]["output"]
    assert (first.attempt.extracted, first.attempt.correct, first.attempt.run_id) == ("(A)", False, run.config["gather_run_id"])
    assert (first.problem.gold_answer, first.problem.choices) == ("B", ["The 24 year old", "Cannot answer", "The 78-year-old"])
    assert json.loads(first.prompt) == [{"role": "user", "content": SALAM_INSTANCES[0]["input"]}]
    assert Dataset.objects.get().benchmark == "bbq"
    # Output that is not JSON is kept, as written, as a parse failure.
    assert (second.parse_ok, second.text, second.fields) == (False, "{not json", {"reason": None, "guideline": None})
    assert "not JSON" in second.parse_error
    assert run.counts["feedback"] == 2 and run.counts["parse_failures"] == 1


def test_the_teacher_name_option_names_salams_teacher(tmp_path):
    call_command("import_feedback", str(salam_file(tmp_path)), "--teacher-name", "gpt-4-0613")
    assert set(Feedback.objects.values_list("teacher_name", flat=True)) == {"imported:gpt-4-0613"}


def test_a_salam_file_under_another_name_is_bbq_by_its_three_options(tmp_path):
    feedback_import(path=salam_file(tmp_path, name="my_feedback.json"))
    assert Dataset.objects.get().benchmark == "bbq"


# --- FAIR files ------------------------------------------------------------------------------------

def test_a_fair_feedback_file_gives_one_feedback_per_wrong_answer_and_teacher(tmp_path):
    run = feedback_import(path=fair_feedback_file(tmp_path))
    rows = Feedback.objects.filter(run=run).select_related("problem")
    assert sorted((f.problem.external_id, f.teacher_name, f.text) for f in rows) == [
        ("0", "imported:ann", "Ann on 0"), ("0", "imported:bo", "Bo on 0"),
        ("1", "imported:ann", "Ann on 1"), ("1", "imported:bo", "Bo on 1")]
    assert all(f.fields == {"feedback": f.text} and f.method == "fair" and f.peer_accepted is None for f in rows)
    assert {f.attempt.run_id for f in rows} == {run.config["gather_run_id"]}
    assert run.config["imported"]["format"] == "fair_feedback"


def test_a_fair_rationale_file_keeps_peer_scores_and_its_verdict(tmp_path):
    run = feedback_import(path=fair_rationale_file(tmp_path))
    by_text = {f.text: f for f in Feedback.objects.filter(run=run)}
    ann = by_text["3 + 4 = 7"]
    assert (ann.fields, ann.peer_scores, ann.peer_mean, ann.peer_accepted) == (
        {"rationale": "3 + 4 = 7"}, {"peer 1": 5, "peer 2": 4}, 4.5, True)
    assert (by_text["3 * 4 = 12"].peer_mean, by_text["3 * 4 = 12"].peer_accepted) == (2.5, False)
    # An out-of-range score counts as no score; the fields keep it as written, for the FAIR export.
    cy = by_text["7"]
    assert (cy.peer_scores, cy.peer_mean, cy.peer_accepted) == ({"peer 1": None, "peer 2": 2}, 2.0, False)
    assert cy.fields == {"rationale": "7", "peer_scores": {"peer 1": 83, "peer 2": 2}}
    assert by_text["9 - 2 = 7"].peer_accepted is True  # [4, 0]: the 0 is dropped, 4 > 3
    assert run.counts["peer_accepted"] == 3
    assert (run.counts["fair_rule_agrees"], run.counts["fair_rule_differs"]) == (6, 0)


def test_a_verdict_fairs_rule_would_not_give_is_kept_and_logged(tmp_path):
    path = fair_rationale_file(tmp_path)
    rows = json.loads(path.read_text())
    rows[0]["correct_rationale"].append("3 * 4 = 12")  # scores [2, 3]: the rule rejects it
    path.write_text(json.dumps(rows))
    run = feedback_import(path=path)
    assert Feedback.objects.get(run=run, text="3 * 4 = 12").peer_accepted is True
    assert run.counts["fair_rule_differs"] == 1
    warning = RunEvent.objects.get(run=run, level=RunEvent.Level.WARNING).message
    assert "bo [2, 3] in correct_rationale" in warning


def test_a_fair_file_does_not_take_a_teacher_name(tmp_path):
    with pytest.raises(FeedbackImportError, match="names its own teachers"):
        feedback_import(path=fair_feedback_file(tmp_path), teacher_name="gpt")
    assert nothing_added()


# --- once, and all or nothing ----------------------------------------------------------------------

@pytest.mark.parametrize("make_file", [salam_file, fair_feedback_file, fair_rationale_file])
def test_importing_the_same_file_twice_adds_nothing(tmp_path, make_file):
    path = make_file(tmp_path)
    first = feedback_import(path=path)
    counts = (Run.objects.count(), Problem.objects.count(), Attempt.objects.count(), Feedback.objects.count())
    assert feedback_import(path=path) == first
    assert (Run.objects.count(), Problem.objects.count(), Attempt.objects.count(), Feedback.objects.count()) == counts


MALFORMED = [
    ("salam_layout", lambda tmp: salam_file(tmp, [SALAM_INSTANCES[0], {"input": "free text", "output": "{}"}]),
     "record 2, field 'input'"),
    ("salam_output_kind", lambda tmp: salam_file(tmp, [SALAM_INSTANCES[0], {"input": "x", "output": 3}]),
     "record 2, field 'output'"),
    ("fair_feedback_missing", lambda tmp: write_json(tmp, "f.json", [
        {**FAIR_ROWS[0], "ann_feedback": "a"}, {**FAIR_ROWS[1]}]), "record 2, field 'ann_feedback'"),
    ("fair_rationale_shape", lambda tmp: fair_rationale_file(tmp, [
        RATIONALES[0], {**RATIONALES[1], "bo_rationale": ["9 + 2 = 11", "high", 1]}]), "record 2, field 'bo_rationale'"),
    ("fair_student_field", lambda tmp: write_json(tmp, "f.json", [
        {**FAIR_ROWS[0], "ann_feedback": "a"}, {**FAIR_ROWS[1], "student_wrong_pred": None, "ann_feedback": "b"}]),
     "record 2, field 'student_wrong_pred'"),
]


@pytest.mark.parametrize("make_file,where", [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_a_malformed_file_adds_nothing_and_says_where(tmp_path, make_file, where):
    with pytest.raises(DatasetFormatError, match=where):
        feedback_import(path=make_file(tmp_path))
    assert nothing_added()


@pytest.mark.parametrize("make_file", [salam_file, fair_rationale_file])
def test_a_failure_after_the_answers_are_written_takes_them_back(tmp_path, monkeypatch, make_file):
    def fail(run, counts):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr("webapp.teach.imports._finish", fail)
    with pytest.raises(RuntimeError):
        feedback_import(path=make_file(tmp_path))
    assert nothing_added()


def test_a_fair_file_without_teacher_fields_is_not_feedback(tmp_path):
    with pytest.raises(DatasetFormatError, match="import it with import_seed"):
        feedback_import(path=write_json(tmp_path, "Tiny_svamp_false_round0.json", FAIR_ROWS))
    with pytest.raises(DatasetFormatError, match="no <teacher>_rationale field"):
        feedback_import(path=fair_feedback_file(tmp_path), format="fair_rationale")
    assert nothing_added()


def test_the_command_prints_counts_and_refuses_a_bad_file(tmp_path, capsys):
    call_command("import_feedback", str(fair_rationale_file(tmp_path)))
    out = capsys.readouterr().out
    assert "6 feedback (imported:ann 2, imported:bo 2, imported:cy 2)" in out
    assert "3 rationales accepted by peer review, FAIR's rule agreeing on 6 of 6" in out
    call_command("import_feedback", str(tmp_path / "Tiny_svamp_rationale_round0.json"))
    assert "Already imported" in capsys.readouterr().out
    with pytest.raises(CommandError, match="nothing was imported: .*record 1"):
        call_command("import_feedback", str(write_json(tmp_path, "bad.json", [{"id": 1}])))


# --- the released files ----------------------------------------------------------------------------

@pytest.mark.shared
def test_the_released_salam_file_gives_514_feedback_as_written(shared_dir):
    path = shared_dir / "seed-data" / "salam" / "finetune_data" / "bbq_src_data.json"
    run = feedback_import(path=path)
    instances = json.loads(path.read_text(encoding="utf-8"))["instances"]
    rows = list(Feedback.objects.filter(run=run).order_by("problem__position"))
    assert len(rows) == 514 == Attempt.objects.filter(correct=False).count()
    assert all(row.parse_ok and row.teacher_name == "imported:gpt-4" for row in rows)
    assert [row.text for row in rows] == [instance["output"] for instance in instances]
    assert [row.fields for row in rows] == [json.loads(instance["output"]) for instance in instances]
    assert Dataset.objects.get().benchmark == "bbq"


@pytest.mark.shared
def test_the_released_fair_feedback_file_gives_387_per_teacher(shared_dir):
    path = shared_dir / "seed-data" / "fair" / "Llama-2-7b-chat-hf_svamp_feedback_round0.json"
    run = feedback_import(path=path)
    assert {name: row["total"] for name, row in run.counts["per_teacher"].items()} == {
        "imported:gpt": 387, "imported:gemini": 387, "imported:mistral": 387}
    row = json.loads(path.read_text(encoding="utf-8"))[0]
    first = Feedback.objects.get(run=run, problem__external_id=str(row["id"]), teacher_name="imported:gemini")
    assert first.text == row["gemini_feedback"] and first.fields == {"feedback": row["gemini_feedback"]}
    assert feedback_import(path=path) == run and Feedback.objects.count() == 3 * 387


@pytest.mark.shared
def test_the_released_fair_rationales_are_accepted_as_fairs_rule_says(shared_dir):
    path = shared_dir / "seed-data" / "fair" / "Llama-2-7b-chat-hf_svamp_rationale_round0.json"
    run = feedback_import(path=path)
    rows = {str(row["id"]): row for row in json.loads(path.read_text(encoding="utf-8"))}
    feedback = list(Feedback.objects.filter(run=run).select_related("problem"))
    assert len(feedback) == 3 * 387
    for item in feedback:
        row = rows[item.problem.external_id]
        text, *scores = row[f"{item.teacher_name.removeprefix('imported:')}_rationale"]
        assert item.text == text
        assert item.peer_accepted == (text in row["correct_rationale"]) == fair_accepts(scores)
    assert sum(item.peer_accepted for item in feedback) == 826 == run.counts["peer_accepted"]
    assert run.counts["fair_rule_differs"] == 0
    assert feedback_import(path=path) == run and Feedback.objects.count() == 3 * 387
