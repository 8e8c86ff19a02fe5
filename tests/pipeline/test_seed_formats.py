"""Tests for pipeline.seeds on our own small files in each seed's shape: reading, writing back, detection, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import DatasetFormatError, ProblemRecord
from pipeline.seeds import SEED_FORMATS, SeedBundle, read_seed_file, write_seed_file
from pipeline.seeds.layout import BOM, JsonLayout, detect_layout

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "seed_formats"

OWN_FILES = {
    "salam/mistake_collections.json": "salam_mistakes",
    "salam/correct_collections.json": "salam_correct",
    "salam/status.json": "salam_status",
    "fair/TinyLlama_svamp_false_round0.json": "fair_false",
    "fair/TinyLlama_strategyQA_false_round0.json": "fair_false",
    "fair/TinyLlama_svamp_feedback_round0.json": "fair_feedback",
    "fair/TinyLlama_svamp_rationale_round0.json": "fair_rationale",
    "gsi/results.json": "gsi_results",
    "gsi/sampled_results.json": "gsi_results",
}


def read(name: str, format: str | None = None) -> SeedBundle:
    return read_seed_file(FIXTURES / name, format)


def raw(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def write_json(path: Path, data, **dump) -> Path:
    path.write_text(json.dumps(data, **dump), encoding="utf-8")
    return path


def by_id(bundle: SeedBundle) -> dict[str, ProblemRecord]:
    return {problem.external_id: problem for problem in bundle.problems}


# --- round trips and detection ----------------------------------------------------------------------

@pytest.mark.parametrize("name", OWN_FILES)
def test_it_writes_each_own_file_back_byte_for_byte(name, tmp_path):
    written = tmp_path / Path(name).name
    write_seed_file(read(name), written)
    assert json.loads(written.read_text(encoding="utf-8")) == raw(name)
    assert written.read_bytes() == (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(("name", "expected"), OWN_FILES.items())
def test_it_detects_the_format_from_the_content(name, expected):
    assert read(name).format == expected


def test_every_format_is_listed_with_a_description():
    assert set(SEED_FORMATS) == {"salam_status", "salam_mistakes", "salam_correct", "fair_false", "fair_feedback",
                                 "fair_rationale", "gsi_results"}
    assert all(seed.description for seed in SEED_FORMATS.values())


def test_a_salam_collection_is_told_mistake_or_correct_by_its_name(tmp_path):
    renamed = write_json(tmp_path / "flan_t5.json", raw("salam/correct_collections.json"), indent=2)
    with pytest.raises(DatasetFormatError, match="neither 'mistake_' nor 'correct_'"):
        read_seed_file(renamed)
    assert all(attempt.correct for attempt in read_seed_file(renamed, "salam_correct").attempts)


# --- SALAM -------------------------------------------------------------------------------------------

def test_a_mistake_collection_reads_as_problems_and_wrong_attempts():
    bundle = read("salam/mistake_collections.json")
    assert bundle.benchmark == "bbh"
    assert [problem.external_id for problem in bundle.problems] == [
        "date_understanding-4", "object_counting-0", "temporal_sequences-7"]
    date = bundle.problems[0]
    assert (date.gold_answer, date.choices, date.task, date.split) == (
        "A", ("03/02/2020", "02/29/2020", "03/01/2021"), "date_understanding", "")
    assert date.metadata == {"benchmark": "bbh", "target_option": "(a) 03/02/2020"}
    assert bundle.problems[1].choices == () and bundle.problems[1].gold_answer == "4"  # a free-text target
    assert [attempt.correct for attempt in bundle.attempts] == [False, False, False]
    first = bundle.attempts[0]
    assert first.prompt == raw("salam/mistake_collections.json")[0]["response/prompt_str"]
    assert first.metadata == {"seed_fields": {"task": "date_understanding_zero_shot", "task_idx": 4, "index": 0}}


def test_the_raw_output_is_the_attempt_output_and_the_scored_output_its_extraction():
    attempt = read("salam/mistake_collections.json").attempts[2]
    assert attempt.output == "The red one opens first, so (B)."  # response/output_ori
    assert attempt.extracted == "(B)"  # response/output, what SALAM scored


def test_a_correct_collection_keeps_the_prompt_as_sent_while_the_choices_are_clean():
    bundle = read("salam/correct_collections.json")
    assert bundle.benchmark == "bbq"
    assert all(attempt.correct for attempt in bundle.attempts)
    assert bundle.problems[1].choices == ("Not known", "The old pilot", "The young pilot")
    assert "(B) The old pilot \n" in bundle.attempts[1].prompt  # SALAM's trailing space survives


def test_status_counts_problems_splits_and_labels_per_task():
    bundle = read("salam/status.json")
    data = raw("salam/status.json")
    assert len(bundle.problems) == len(bundle.attempts) == sum(
        len(entry["train_set"]) + len(entry["test_set"]) for entry in data.values()) == 8
    assert [problem.split for problem in bundle.problems] == ["train"] * 3 + ["test"] * 2 + ["train"] * 2 + ["test"]
    right = sum(sum(entry["train_score"]) + sum(entry["test_score"]) for entry in data.values())
    assert sum(attempt.correct for attempt in bundle.attempts) == right == 5
    assert bundle.extra["tasks"] == ["Height_zero_shot", "Hobby_zero_shot"]
    assert "task_entries" not in bundle.extra  # scores, options, mistakes and corrects all follow from the records


def test_status_test_records_are_named_by_position_and_take_the_target_option_list():
    bundle = read("salam/status.json")
    problem = by_id(bundle)["Height-test-2"]
    assert problem.metadata["target_option"] == "(a) undetermined"
    attempt = next(attempt for attempt in bundle.attempts if attempt.problem_external_id == "Height-test-2")
    assert attempt.correct is False
    assert attempt.metadata == {"status_task": "Height_zero_shot"}  # a test record has nothing else to keep


def test_status_lists_that_do_not_follow_from_the_records_are_kept_and_written_back(tmp_path):
    data = raw("salam/status.json")
    data["Height_zero_shot"]["train_mistake"] = []  # SALAM's own lists disagreeing with its scores
    data["Hobby_zero_shot"]["note"] = "hand-edited"
    path = write_json(tmp_path / "status.json", data, indent=2)
    bundle = read_seed_file(path)
    assert bundle.extra["task_entries"]["Height_zero_shot"] == {"seed_fields": {"train_mistake": []}}
    assert bundle.extra["task_entries"]["Hobby_zero_shot"] == {"seed_fields": {"note": "hand-edited"}}
    write_seed_file(bundle, tmp_path / "back.json")
    assert (tmp_path / "back.json").read_bytes() == path.read_bytes()


def test_a_status_record_without_an_index_comes_back_without_one(tmp_path):
    data = raw("salam/status.json")
    record = data["Hobby_zero_shot"]["train_set"][1]
    del record["index"]  # the writer would number it, as it does Errata's own attempts
    data["Hobby_zero_shot"]["train_mistake"] = [record]
    path = write_json(tmp_path / "status.json", data, indent=2)
    attempt = read_seed_file(path).attempts[-2]
    assert attempt.metadata["seed_keys"] == ["response/prompt_str", "response/target_str", "response/output_ori",
                                             "response/output", "task", "task_idx", "target_option"]
    write_seed_file(read_seed_file(path), tmp_path / "back.json")
    assert (tmp_path / "back.json").read_bytes() == path.read_bytes()


def test_a_status_bundle_exports_its_mistakes_as_a_collection_that_reads_back(tmp_path):
    write_seed_file(read("salam/status.json"), tmp_path / "mistake_collections.json", "salam_mistakes")
    mistakes = read_seed_file(tmp_path / "mistake_collections.json")
    assert [attempt.problem_external_id for attempt in mistakes.attempts] == ["Height-0", "Height-test-2", "Hobby-1"]
    written = raw_file(tmp_path / "mistake_collections.json")
    assert [record["task_idx"] for record in written] == [0, "test-2", 1]
    assert [record["index"] for record in written] == [0, 1, 2]  # numbered within the new file


# --- FAIR --------------------------------------------------------------------------------------------

def test_a_fair_false_file_reads_as_a_dataset_and_wrong_attempts():
    bundle = read("fair/TinyLlama_svamp_false_round0.json")
    assert (bundle.benchmark, bundle.extra["student_model"]) == ("svamp", "TinyLlama")
    assert [(problem.external_id, problem.gold_answer) for problem in bundle.problems] == [
        ("2", "7"), ("5", "24"), ("9", "75")]
    assert [(attempt.extracted, attempt.correct) for attempt in bundle.attempts] == [
        ("17", False), ("1.5", False), (None, False)]  # FAIR's "absolute_wrong_final_ans": no answer found
    assert bundle.attempts[0].output == "Answer:\n12 + 5 = 17"
    assert all(attempt.metadata == {} for attempt in bundle.attempts)  # everything is modelled
    assert bundle.extra["json_layout"]["indent"] is None  # one compact line, as FAIR's svamp file


def test_a_fair_strategyqa_gold_splits_into_answer_and_facts():
    problem = read("fair/TinyLlama_strategyQA_false_round0.json").problems[0]
    assert problem.gold_answer == "false"
    assert problem.gold_rationale == "Goldfish live in water. Climbing needs limbs."


def test_fair_teacher_fields_stay_in_metadata_until_they_are_imported():
    feedback = read("fair/TinyLlama_svamp_feedback_round0.json").attempts[0]
    assert list(feedback.metadata["seed_fields"]) == ["gpt_feedback", "gemini_feedback", "mistral_feedback"]
    rationale = read("fair/TinyLlama_svamp_rationale_round0.json").attempts[0]
    assert rationale.metadata["seed_fields"]["gpt_rationale"] == ["12 - 5 = 7. The answer is 7.", 9, 8]


def test_a_feedback_file_written_as_a_false_file_drops_the_teacher_fields(tmp_path):
    write_seed_file(read("fair/TinyLlama_svamp_feedback_round0.json"), tmp_path / "false.json", "fair_false")
    assert raw_file(tmp_path / "false.json") == raw("fair/TinyLlama_svamp_false_round0.json")[:2]


# --- GSI ---------------------------------------------------------------------------------------------

def test_gsi_results_read_one_attempt_per_record_with_gsi_verdict():
    bundle = read("gsi/results.json")
    assert bundle.benchmark == "gsm8k"
    assert [(a.extracted, a.correct) for a in bundle.attempts] == [("15", True), ("6", False), (None, False)]
    assert bundle.problems[0].gold_rationale.endswith("The answer is 15")
    assert bundle.attempts[1].metadata == {"seed_fields": {"pred_value": 6}}  # written back as the number


def test_gsi_sampled_results_read_one_attempt_per_sample():
    bundle = read("gsi/sampled_results.json")
    assert bundle.benchmark == "aqua" and bundle.extra["samples_as_lists"] is True
    assert [(a.problem_external_id, a.sample_index, a.correct) for a in bundle.attempts] == [
        ("aqua_rat_0", 0, True), ("aqua_rat_0", 1, False), ("aqua_rat_1", 0, True), ("aqua_rat_1", 1, False)]
    assert bundle.problems[0].choices == ("6", "8", "9", "12", "16")


def test_a_gsi_problem_file_without_predictions_is_refused_clearly():
    pool = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks" / "gsi" / "gsm8k.json"
    with pytest.raises(DatasetFormatError, match="without the student's pred"):
        read_seed_file(pool)
    with pytest.raises(DatasetFormatError, match="is a dataset, not results") as error:
        read_seed_file(pool, "gsi_results")
    assert (error.value.record, error.value.field) == (1, "pred")


# --- writing Errata's own attempts -------------------------------------------------------------------

def gathered_bundle(format: str) -> SeedBundle:
    """What a gather run would hand over: no seed metadata at all."""
    problems = [
        ProblemRecord("navigate-3", "Do you return to the start?", "A", choices=("Yes", "No"), task="navigate",
                      metadata={"benchmark": "bbh"}),
        ProblemRecord("navigate-4", "Take 2 steps. Are you back?", "B", choices=("Yes", "No"), task="navigate",
                      metadata={"benchmark": "bbh"}),
    ]
    attempts = [
        AttemptRecord("navigate-3", "(B)", "(B)", False),
        AttemptRecord("navigate-4", "(B)", "(B)", True),
        AttemptRecord("navigate-4", "(A)", "(A)", False, sample_index=1),
    ]
    return SeedBundle(format, "bbh", problems, attempts)


def test_errata_attempts_export_as_a_salam_mistake_collection(tmp_path):
    write_seed_file(gathered_bundle("errata"), tmp_path / "mistake_collections.json", "salam_mistakes")
    assert raw_file(tmp_path / "mistake_collections.json")[0] == {
        "response/prompt_str": "Do you return to the start?\nOptions:\n(A) Yes\n(B) No",
        "response/target_str": "(A)",
        "response/output_ori": "(B)",
        "response/output": "(B)",
        "task": "navigate_zero_shot",
        "task_idx": 3,
        "target_option": "(a) yes",
        "index": 0,
    }
    back = read_seed_file(tmp_path / "mistake_collections.json")
    assert len(back.attempts) == 2 and by_id(back)["navigate-3"].choices == ("Yes", "No")


def test_errata_attempts_export_as_gsi_results_with_samples_as_lists(tmp_path):
    write_seed_file(gathered_bundle("errata"), tmp_path / "results.json", "gsi_results")
    records = raw_file(tmp_path / "results.json")
    assert records[1]["pred"] == ["(B)", "(A)"] and records[1]["correct_pred"] == [True, False]
    assert (tmp_path / "results.json").read_text(encoding="utf-8").startswith('[\n    {\n        "item_id"')


def test_a_fair_export_keeps_only_the_wrong_attempts(tmp_path):
    write_seed_file(gathered_bundle("errata"), tmp_path / "false.json", "fair_false")
    assert [record["student_wrong_pred"] for record in raw_file(tmp_path / "false.json")] == ["(B)", "(A)"]


def test_writing_refuses_an_unknown_format_or_an_attempt_without_its_problem(tmp_path):
    bundle = gathered_bundle("errata")
    with pytest.raises(ValueError, match="unknown seed format"):
        write_seed_file(bundle, tmp_path / "x.json", "lema")
    bundle.problems.pop()
    with pytest.raises(ValueError, match="'navigate-4', which the bundle lacks"):
        write_seed_file(bundle, tmp_path / "x.json", "salam_mistakes")


# --- bad input ---------------------------------------------------------------------------------------

def edited(tmp_path: Path, name: str, edit, **dump) -> Path:
    data = raw(name)
    edit(data)
    return write_json(tmp_path / Path(name).name, data, **dump)


def set_field(position: int, key: str, value):
    def edit(data):
        data[position][key] = value
    return edit


def drop_field(position: int, key: str):
    def edit(data):
        del data[position][key]
    return edit


def copy_field(source: int, target: int, key: str):
    def edit(data):
        data[target][key] = data[source][key]
    return edit


BAD_RECORDS = [
    # (fixture, edit, record, field, message)
    ("salam/mistake_collections.json", drop_field(1, "response/output"), 2, "response/output", "missing"),
    ("salam/mistake_collections.json", set_field(0, "task_idx", [4]), 1, "task_idx", "got a list"),
    ("salam/mistake_collections.json", set_field(2, "index", "2"), 3, "index", "must be an integer"),
    ("salam/mistake_collections.json", set_field(1, "response/prompt_str", None), 2, "response/prompt_str",
     "must be a string"),
    ("salam/correct_collections.json", copy_field(0, 1, "task_idx"), 2, "task_idx", "duplicate id 'Age-0'"),
    ("fair/TinyLlama_svamp_false_round0.json", drop_field(2, "student_wrong_pred"), 3, "student_wrong_pred", "missing"),
    ("fair/TinyLlama_svamp_false_round0.json", set_field(1, "question", 5), 2, "question", "must be a string"),
    ("fair/TinyLlama_svamp_false_round0.json", set_field(0, "gold_answer", "seven"), 1, "gold_answer", "number"),
    ("fair/TinyLlama_svamp_false_round0.json", copy_field(0, 2, "id"), 3, "id", "duplicate id '2'"),
    ("fair/TinyLlama_strategyQA_false_round0.json", set_field(1, "gold_answer", "yes\tfacts"), 2, "gold_answer",
     "'true.' or 'false.'"),
    ("gsi/results.json", drop_field(1, "correct_pred"), 2, "correct_pred", "is a dataset, not results"),
    ("gsi/results.json", set_field(0, "correct_pred", "yes"), 1, "correct_pred", "must be true or false"),
    ("gsi/results.json", set_field(2, "pred", None), 3, "pred", "must be the student's output"),
    ("gsi/results.json", set_field(2, "pred_value", {"value": 5}), 3, "pred_value", "a string, a number or null"),
    ("gsi/results.json", copy_field(0, 1, "item_id"), 2, "item_id", "duplicate id 'gsm8k_0'"),
    ("gsi/sampled_results.json", set_field(1, "pred_value", ["C"]), 2, "pred_value", "has 1 entries, pred has 2"),
    ("gsi/sampled_results.json", set_field(0, "correct_pred", True), 1, "correct_pred", "must be a list like pred"),
    ("gsi/sampled_results.json", set_field(1, "pred", "30 / 2 = 15"), 2, "pred", "unlike the records before it"),
]


@pytest.mark.parametrize(("name", "edit", "record", "field", "message"), BAD_RECORDS)
def test_a_bad_record_is_named_with_its_field(tmp_path, name, edit, record, field, message):
    path = edited(tmp_path, name, edit, indent=2)
    with pytest.raises(DatasetFormatError, match=message) as error:
        read_seed_file(path, OWN_FILES[name])
    assert (error.value.path, error.value.record, error.value.field) == (path.name, record, field)


def status_edit(task: str, key: str, change):
    def edit(data):
        data[task][key] = change(data[task][key])
    return edit


BAD_STATUS = [
    (status_edit("Height_zero_shot", "train_score", lambda scores: [2, *scores[1:]]), 1, "train_score", "not 0 or 1"),
    (status_edit("Hobby_zero_shot", "test_target_option", lambda options: [7]), 1, "test_target_option",
     "not a string"),
    (status_edit("Height_zero_shot", "test_set", lambda rows: [rows[0], {**rows[1], "response/target_str": 3}]), 2,
     "response/target_str", "must be a string"),
    (status_edit("Height_zero_shot", "train_set", lambda rows: [rows[0], {**rows[1], "task_idx": 0}, rows[2]]), 2,
     "task_idx", "duplicate id 'Height-0'"),
    (status_edit("Height_zero_shot", "train_set", lambda rows: [rows[0], "not a record", rows[2]]), 2, None,
     "expected a JSON object"),
]


@pytest.mark.parametrize(("edit", "record", "field", "message"), BAD_STATUS)
def test_a_bad_status_record_is_named_with_its_task_set_and_field(tmp_path, edit, record, field, message):
    path = edited_status(tmp_path, edit)
    with pytest.raises(DatasetFormatError, match=message) as error:
        read_seed_file(path)
    assert (error.value.record, error.value.field) == (record, field)


def test_status_lists_of_the_wrong_length_are_refused(tmp_path):
    path = edited_status(tmp_path, status_edit("Hobby_zero_shot", "train_score", lambda scores: scores[:1]))
    with pytest.raises(DatasetFormatError, match="Hobby_zero_shot: has 1 entries for the 2 records of train_set"):
        read_seed_file(path)


def edited_status(tmp_path: Path, edit) -> Path:
    data = raw("salam/status.json")
    edit(data)
    return write_json(tmp_path / "status.json", data, indent=2)


@pytest.mark.parametrize(("content", "message"), [
    ("", "file is empty"),
    ("[]", "an empty array"),
    ('"a string"', "got a string"),
    ("[1, 2]", "got a number"),
    ('{"type": "text2text", "instances": []}', "not SALAM's status.json"),
    ('[{"prompt": "Q", "completion": "A"}]', "the first record has keys completion, prompt"),
    ('[{"id": 1, "question": "Q"', "cut off"),
])
def test_a_file_of_no_seed_shape_is_refused(tmp_path, content, message):
    path = tmp_path / "seed.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=message):
        read_seed_file(path)


@pytest.mark.parametrize(("name", "format", "message"), [
    ("salam/status.json", "salam_mistakes", "expected a SALAM collection: a JSON array of records, got an object"),
    ("salam/mistake_collections.json", "salam_status", "expected SALAM's status.json"),
    ("salam/mistake_collections.json", "fair_false", "field 'gold_answer': missing"),
    ("fair/TinyLlama_svamp_false_round0.json", "gsi_results", "field 'pred': missing"),
    ("gsi/results.json", "ranked", "unknown seed format 'ranked'"),
])
def test_a_format_that_does_not_fit_the_file_fails_with_the_reason(name, format, message):
    with pytest.raises(DatasetFormatError, match=message):
        read(name, format)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DatasetFormatError, match="no such file"):
        read_seed_file(tmp_path / "absent.json")


# --- JSON layout -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dump", [
    {"indent": 2}, {"indent": 4}, {"indent": None}, {"indent": None, "separators": (",", ":")},
    {"indent": 4, "ensure_ascii": False}, {"indent": "\t"}, {"indent": 2, "separators": (", ", ": ")},
])
def test_the_layout_read_off_a_file_reproduces_it(dump):
    data = [{"q": "caf\u00e9, \"quoted\": yes", "n": [1, 2.5, None]}, {"q": "", "n": []}]
    for ending in ("", "\n"):
        original = (json.dumps(data, **dump) + ending).encode("utf-8")
        assert detect_layout(original).dumps(data) == original


def test_the_layout_keeps_a_byte_order_mark():
    original = BOM + b'{"a": 1}\n'
    layout = detect_layout(original)
    assert (layout.bom, layout.ending, layout.indent) == (True, "\n", None)
    assert layout.dumps({"a": 1}) == original
    assert JsonLayout.from_dict(layout.as_dict()) == layout


def raw_file(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))
