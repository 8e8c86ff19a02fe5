"""Tests for pipeline.labels: reading labelled seed files and re-scoring them with each seed's own rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.benchmarks.records import DatasetFormatError
from pipeline.labels import NOT_LABELLED, check_labels, read_labelled_seed_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEED_DATA = SHARED / "seed-data"
needs_shared = pytest.mark.skipif(not SEED_DATA.is_dir(), reason="needs ../shared (not in a user's clone)")


def counts(report: dict) -> tuple[int, int, int]:
    return report["records"], report["agree"], report["disagree"]


# --- our own fixtures, one per seed shape, with hand-known verdicts ---------------------------------

def test_it_rescores_a_salam_mistake_collection():
    report = check_labels(FIXTURES / "salam/bbh/mistake_collections.json")
    assert report["format"] == "salam_mistake_collection"
    assert report["benchmark"] == "bbh"
    assert report["scorer"] == "salam_mc"
    assert report["output_field"] == "response/output"
    # (C) for "(c) red" is right; "heptagon" is inside "(d) heptagon" (substring either way)
    assert counts(report) == (4, 2, 2)
    assert report["labelled_wrong_rescored_right"] == 2
    assert sorted(example["index"] for example in report["examples"]) == [1, 2]


def test_a_disagreeing_example_carries_what_explains_it():
    report = check_labels(FIXTURES / "salam/bbh/mistake_collections.json")
    example = next(example for example in report["examples"] if example["index"] == 1)
    assert example["task"] == "reasoning_about_colored_objects_zero_shot"
    assert example["gold"] == "(c) red"
    assert example["output"] == "(C)"
    assert example["extracted"] is not None
    assert example["label"] is False
    assert example["rescored"] is True


def test_it_rescores_a_salam_correct_collection():
    report = check_labels(FIXTURES / "salam/bbh/correct_collections.json")
    assert report["format"] == "salam_correct_collection"
    assert counts(report) == (3, 2, 1)  # "(C)" for "(a) no" is the made-up mislabel
    assert report["labelled_right_rescored_wrong"] == 1
    assert report["examples"][0]["index"] == 2


def test_it_rescores_a_salam_status_file_from_its_score_lists():
    report = check_labels(FIXTURES / "salam/bbq/status.json")
    assert report["format"] == "salam_status"
    assert report["benchmark"] == "bbq"
    assert counts(report) == (5, 3, 2)  # train_set 3 + test_set 2; one mislabel in each split
    where = sorted((example["split"], example["position"]) for example in report["examples"])
    assert where == [("test", 1), ("train", 2)]


def test_status_test_records_take_their_gold_from_test_target_option():
    seed = read_labelled_seed_file(FIXTURES / "salam/bbq/status.json")
    test_answers = [answer for answer in seed.answers if answer.ref["split"] == "test"]
    assert [answer.gold for answer in test_answers] == ["(c) not enough info", "(b) can't be determined"]
    assert [answer.labelled_correct for answer in test_answers] == [True, True]


def test_it_rescores_fair_svamp_with_both_output_fields():
    report = check_labels(FIXTURES / "fair/Tiny-student_svamp_false_round0.json")
    assert report["format"] == "fair_student_wrong"
    assert report["benchmark"] == "svamp"
    assert report["scorer"] == "fair_numeric"
    assert report["output_field"] == "student_wrong_pred"
    # only id 0 ends on the gold number; ids 1 and 4 say the gold first, but FAIR's rule takes the last
    # number (id 4's "Answer:" opens the text, and the seed looks for "\nAnswer" after stripping it)
    assert counts(report) == (5, 4, 1)
    assert report["fields"]["student_wrong_final_answer"] == {"agree": 4, "disagree": 1}
    assert {(example["id"], example["field"]) for example in report["examples"]} == {
        (0, "student_wrong_pred"), (0, "student_wrong_final_answer")}
    assert report["examples"][0]["field"] == "student_wrong_pred"  # the scored field comes first


def test_it_reads_fair_strategyqa_gold_from_before_the_facts():
    seed = read_labelled_seed_file(FIXTURES / "fair/Tiny-student_strategyQA_false_round0.json")
    assert [answer.gold for answer in seed.answers] == ["true", "false", "false"]
    report = check_labels(FIXTURES / "fair/Tiny-student_strategyQA_false_round0.json")
    assert (report["benchmark"], report["scorer"]) == ("strategyqa", "strategyqa_bool")
    assert counts(report) == (3, 2, 1)
    assert report["examples"][0]["id"] == 2


def test_it_reads_fair_gsm8k_gold_after_the_hashes():
    seed = read_labelled_seed_file(FIXTURES / "fair/Tiny-student_gsm8k_false_round0.json")
    assert seed.benchmark == "gsm8k"
    assert [answer.gold for answer in seed.answers] == ["18", "3"]
    assert counts(check_labels(FIXTURES / "fair/Tiny-student_gsm8k_false_round0.json")) == (2, 1, 1)


def test_it_rescores_fair_logiqa_against_the_options():
    seed = read_labelled_seed_file(FIXTURES / "fair/Tiny-student_logiQA_false_round0.json")
    assert (seed.benchmark, seed.scorer) == ("logiqa", "logiqa_option")
    assert len(seed.answers[0].choices) == 4
    report = check_labels(FIXTURES / "fair/Tiny-student_logiQA_false_round0.json")
    assert counts(report) == (2, 1, 1)
    assert report["examples"][0]["id"] == 1


def test_it_accepts_fair_feedback_files_with_extra_fields(tmp_path):
    records = json.loads((FIXTURES / "fair/Tiny-student_svamp_false_round0.json").read_text())
    for record in records:
        record.update(gpt_feedback="Check the last step.", gemini_feedback="", mistral_feedback="Recount.")
    path = tmp_path / "Tiny-student_svamp_feedback_round0.json"
    path.write_text(json.dumps(records))
    assert counts(check_labels(path)) == (5, 4, 1)


def test_examples_are_capped():
    report = check_labels(FIXTURES / "salam/bbh/mistake_collections.json", max_examples=1)
    assert report["disagree"] == 2
    assert len(report["examples"]) == 1


def test_another_scorer_can_stand_in_for_the_seed_rule():
    report = check_labels(FIXTURES / "fair/Tiny-student_svamp_false_round0.json", scorer="numeric")
    assert report["scorer"] == "numeric"
    # the default reads the opening "Answer: 23" line; id 1 has no marker, so 0.92 stays its answer
    assert counts(report) == (5, 3, 2)
    assert {example["id"] for example in report["examples"] if example["field"] == "student_wrong_pred"} == {0, 4}


def test_other_scorers_get_salam_letter_gold_and_options_from_the_prompt():
    seed = read_labelled_seed_file(FIXTURES / "salam/bbh/mistake_collections.json")
    heptagon = seed.answers[2]
    assert heptagon.choices == ("circle", "hexagon", "triangle", "heptagon")
    assert heptagon.gold_for("salam_mc", seed.scorer) == "(d) heptagon"
    assert heptagon.gold_for("bbh", seed.scorer) == "(D)"
    report = check_labels(FIXTURES / "salam/bbh/mistake_collections.json", scorer="bbh")
    assert counts(report) == (4, 2, 2)  # the default agrees with SALAM here: "heptagon" is option (D)
    assert {example["gold"] for example in report["examples"]} == {"(C)", "(D)"}


# --- telling formats apart --------------------------------------------------------------------------

def test_a_collection_needs_its_file_name_to_say_mistake_or_correct(tmp_path):
    path = tmp_path / "collection.json"
    shutil.copy(FIXTURES / "salam/bbh/mistake_collections.json", path)
    with pytest.raises(DatasetFormatError, match=NOT_LABELLED):
        check_labels(path)
    assert check_labels(path, seed_format="salam_correct_collection")["format"] == "salam_correct_collection"


def test_a_format_override_wins_over_the_file_name():
    report = check_labels(FIXTURES / "salam/bbh/mistake_collections.json", seed_format="salam_correct_collection")
    assert report["format"] == "salam_correct_collection"
    # every label flips to "right": the two records the rule scores right now agree
    assert sorted(example["index"] for example in report["examples"]) == [0, 3]


@pytest.mark.parametrize("content", [
    "[]",
    '{"examples": [{"input": "1 + 1", "target": "2"}]}',
    '[{"prompt": "Q", "completion": "A"}]',
    '"just a string"',
    "{not json",
])
def test_it_refuses_files_that_are_not_labelled_seeds(tmp_path, content):
    path = tmp_path / "mistake_collections.json"
    path.write_text(content)
    with pytest.raises(DatasetFormatError, match=NOT_LABELLED):
        check_labels(path)


@pytest.mark.parametrize("seed_format", ["fair_student_wrong", "salam_mistake_collection", "salam_status"])
def test_a_forced_format_still_refuses_an_empty_or_wrong_shape(tmp_path, seed_format):
    path = tmp_path / "mistake_collections.json"
    path.write_text("[]")
    with pytest.raises(DatasetFormatError, match=NOT_LABELLED):
        check_labels(path, seed_format=seed_format)


def test_a_record_missing_a_field_is_named(tmp_path):
    records = json.loads((FIXTURES / "salam/bbh/mistake_collections.json").read_text())
    del records[2]["target_option"]
    path = tmp_path / "mistake_collections.json"
    path.write_text(json.dumps(records))
    with pytest.raises(DatasetFormatError) as error:
        check_labels(path)
    assert (error.value.record, error.value.field) == (2, "target_option")


def test_a_status_score_that_is_not_0_or_1_is_refused(tmp_path):
    status = json.loads((FIXTURES / "salam/bbq/status.json").read_text())
    status["Age_zero_shot"]["train_score"][0] = 0.5
    path = tmp_path / "status.json"
    path.write_text(json.dumps(status))
    with pytest.raises(DatasetFormatError, match="not 0 or 1"):
        check_labels(path)


# --- the real seed files (measured; see docs/label-check.md) ------------------------------------------

REAL_FILES = [
    # (path under seed-data, records); each seed's own rule reproduces every one of its labels
    ("salam/bbh/flan_t5/mistake_collections.json", 1855),
    ("salam/bbh/flan_t5/correct_collections.json", 1203),
    ("salam/bbq_sm/flan_t5/mistake_collections.json", 519),
    ("salam/bbq_sm/flan_t5/correct_collections.json", 1681),
    ("salam/bbq_sm/flan_t5/status.json", 500),
    ("fair/Llama-2-7b-chat-hf_svamp_false_round0.json", 387),
    ("fair/Llama-2-7b-chat-hf_svamp_feedback_round0.json", 387),
    ("fair/Llama-2-7b-chat-hf_svamp_rationale_round0.json", 387),
    ("fair/Llama-2-7b-chat-hf_strategyQA_false_round0.json", 825),
]


@needs_shared
@pytest.mark.parametrize(("relative_path", "records"), REAL_FILES)
def test_each_real_seed_rule_reproduces_its_own_labels(relative_path, records):
    report = check_labels(SEED_DATA / relative_path)
    assert report["records"] == records
    assert report["agree"] == records  # measured: 100% on every file; a drop means a seed rule lost a quirk
    for tally in report.get("fields", {}).values():
        assert tally["agree"] == records


@needs_shared
@pytest.mark.parametrize(("relative_path", "scorer", "agree_floor", "mislabelled"), [
    # Errata's default rule finds the seeds' known mislabels (measured: 1844, 1199, 362, 790 agree)
    ("salam/bbh/flan_t5/mistake_collections.json", "bbh", 1830, {"index": 762}),  # "A" for (A)
    ("salam/bbh/flan_t5/correct_collections.json", "bbh", 1190, {"index": 234}),  # "E" inside "(i) sector"
    ("fair/Llama-2-7b-chat-hf_svamp_false_round0.json", "numeric", 350, {"id": 0}),  # "145" said first
    ("fair/Llama-2-7b-chat-hf_strategyQA_false_round0.json", "boolean", 780, {"id": 24}),  # "True or False:" echo
])
def test_the_default_scorer_flags_known_seed_mislabels(relative_path, scorer, agree_floor, mislabelled):
    report = check_labels(SEED_DATA / relative_path, scorer=scorer, max_examples=100)
    assert report["agree"] >= agree_floor
    flagged = [example for example in report["examples"]
               if mislabelled.items() <= example.items() and example["rescored"] != example["label"]]
    assert flagged, f"expected {mislabelled} among the disagreements"
