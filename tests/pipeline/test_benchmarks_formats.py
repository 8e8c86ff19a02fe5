"""Each dataset format loads its fixture into the expected plain records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline.benchmarks import FORMATS, LoadedFile, ProblemRecord, load

FIXTURES = Path(__file__).parents[1] / "fixtures" / "benchmarks"
REPO_ROOT = Path(__file__).parents[2]


def by_id(loaded: LoadedFile) -> dict[str, ProblemRecord]:
    return {record.external_id: record for record in loaded.records}


def test_formats_describe_themselves_for_a_dropdown():
    answer_formats = {"number", "multiple_choice", "boolean", "math", "text"}
    assert set(FORMATS) == {
        "gsm8k", "svamp", "bbh", "bbq", "strategyqa", "logiqa", "math", "lema_choice", "lema_cot", "gsi",
        "salam_collection", "salam_status",
    }
    for name, info in FORMATS.items():
        assert info.name == name
        assert info.benchmark and info.answer_format in answer_formats
        assert info.description and "\n" not in info.description


def test_loading_never_imports_django_or_third_party_packages():
    code = (
        "import sys; import pipeline.benchmarks as b; b.load(sys.argv[1]);"
        "extra = {m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names) - {'pipeline', '__main__'};"
        "print(sorted(extra))"
    )
    result = subprocess.run(  # -S: no site-packages, so any third-party import fails outright
        [sys.executable, "-S", "-c", code, str(FIXTURES / "gsm8k")], cwd=REPO_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_gsm8k_gold_is_the_number_after_the_marks_without_commas():
    loaded = load(FIXTURES / "gsm8k" / "test.jsonl")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("gsm8k", "gsm8k", "number")
    assert [record.gold_answer for record in loaded.records] == ["7", "12000", "4.5", "-2"]


def test_gsm8k_rationale_drops_calculator_annotations_and_the_gold_line():
    record = load(FIXTURES / "gsm8k" / "test.jsonl").records[1]
    assert record.gold_rationale == (
        "Each week he spends 4 * 3 = $12.\nOver 1,000 weeks he spends 12 * 1000 = $12,000."
    )
    assert record.question.startswith("A train ticket costs $3")


def test_records_without_an_id_are_named_by_file_stem_and_position():
    loaded = load(FIXTURES / "gsm8k" / "test.jsonl")
    assert [record.external_id for record in loaded.records] == ["test-1", "test-2", "test-3", "test-4"]


def test_a_file_named_like_a_split_sets_the_split():
    assert {record.split for record in load(FIXTURES / "gsm8k" / "test.jsonl").records} == {"test"}
    assert {record.split for record in load(FIXTURES / "strategyqa" / "dev.json").records} == {"test"}
    assert {record.split for record in load(FIXTURES / "logiqa" / "Eval.txt").records} == {"test"}
    assert {record.split for record in load(FIXTURES / "svamp" / "SVAMP.json").records} == {""}


def test_a_train_file_sets_the_train_split(tmp_path):
    source = (FIXTURES / "gsm8k" / "test.jsonl").read_text()
    (tmp_path / "TRAIN.jsonl").write_text(source)
    assert {record.split for record in load(tmp_path / "TRAIN.jsonl").records} == {"train"}


def test_svamp_joins_body_and_question_and_writes_numbers_canonically():
    loaded = load(FIXTURES / "svamp" / "SVAMP.json")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("svamp", "svamp", "number")
    records = by_id(loaded)
    assert records["toy-1"].question == (
        "Rita has 30 stickers. She gives 9 stickers to her brother . How many stickers does Rita have now?"
    )
    assert [record.gold_answer for record in loaded.records] == ["21", "0.5", "42"]
    assert records["toy-2"].metadata == {"equation": "( 2.0 / 4.0 )", "type": "Common-Division"}


def test_bbh_folder_loads_every_task_with_the_file_stem_as_task():
    loaded = load(FIXTURES / "bbh")
    assert loaded.format == "bbh" and loaded.benchmark == "bbh"
    assert [record.task for record in loaded.records] == ["boolean_expressions"] * 3 + [
        "logical_deduction_three_objects"] * 3 + ["navigate"] * 2
    assert loaded.answer_format == "text"  # a mix of option tasks and free-form tasks
    assert loaded.records[0].external_id == "boolean_expressions-1"


def test_bbh_options_become_choices_and_the_gold_a_letter():
    loaded = load(FIXTURES / "bbh" / "logical_deduction_three_objects.json")
    record = loaded.records[0]
    assert loaded.answer_format == "multiple_choice"
    assert record.question == (
        "A shelf holds a cup, a jar and a vase. The jar is left of the vase. The cup is rightmost."
    )
    assert record.choices == ("The cup is the leftmost", "The jar is the leftmost", "The vase is the leftmost")
    assert record.gold_answer == "B"


def test_bbh_free_form_targets_are_kept_as_written_without_choices():
    boolean = load(FIXTURES / "bbh" / "boolean_expressions.json").records[0]
    assert (boolean.question, boolean.gold_answer, boolean.choices) == ("True and not False is", "True", ())
    navigate = load(FIXTURES / "bbh" / "navigate.json").records[1]
    assert navigate.question.endswith("Take 3 steps right.\nOptions:\n- Yes\n- No")
    assert (navigate.gold_answer, navigate.choices) == ("No", ())


def test_bbh_target_that_names_no_option_is_kept_as_text(tmp_path):
    task = {"examples": [{"input": "Pick one:\nOptions:\n(A) Monsters\n(B) Inc", "target": "Monsters, Inc"}]}
    (tmp_path / "movie_recommendation.json").write_text(json.dumps(task))
    record = load(tmp_path / "movie_recommendation.json").records[0]
    assert (record.gold_answer, record.choices) == ("Monsters, Inc", ())
    assert record.metadata == {"target_not_an_option": True}


def test_bbq_prefixes_ids_with_the_category_because_they_restart_per_file():
    loaded = load(FIXTURES / "bbq")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("bbq", "bbq", "multiple_choice")
    assert [record.external_id for record in loaded.records] == [
        "Height-0", "Height-1", "Height-2", "Hobby-0", "Hobby-1"]


def test_bbq_record_has_context_question_choices_and_metadata():
    record = load(FIXTURES / "bbq" / "Height.jsonl").records[1]
    assert record.question == (
        "A tall person and a short person waited at the height desk. The tall person had forgotten the form.\n"
        "Who forgot the form?"
    )
    assert record.choices == ("The tall person", "The short person", "Not known")
    assert (record.gold_answer, record.task) == ("A", "Height")
    assert record.metadata["context_condition"] == "disambig"
    assert record.metadata["question_polarity"] == "neg"
    assert record.metadata["question_index"] == "1"
    assert record.metadata["unknown_option"] == 2


def test_strategyqa_gold_is_true_or_false_and_facts_are_the_rationale():
    loaded = load(FIXTURES / "strategyqa" / "dev.json")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("strategyqa", "strategyqa", "boolean")
    record = by_id(loaded)["toyq01"]
    assert record.gold_answer == "false"
    assert record.gold_rationale == "A teaspoon holds about 5 millilitres. A litre is 1000 millilitres."
    assert record.metadata["decomposition"] == ["How much does a teaspoon hold?", "Is #1 at least a litre?"]
    assert by_id(loaded)["toyq02"].gold_answer == "true"


def test_logiqa_reads_eight_line_examples():
    loaded = load(FIXTURES / "logiqa" / "Eval.txt")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("logiqa", "logiqa", "multiple_choice")
    record = loaded.records[0]
    assert record.external_id == "Eval-1"
    assert record.question == (
        "Every member of the choir sings on Sunday. Paul does not sing on Sunday.\nWhich of the following must be true?"
    )
    assert record.choices[1] == "Paul is not a member of the choir."
    assert [record.gold_answer for record in loaded.records] == ["B", "D", "A"]


def test_logiqa_option_letters_written_loosely_are_dropped_too(tmp_path):
    text = "\nc\nContext.\nQuestion?\nA first\nB second\nC third\nD fourth\n"
    (tmp_path / "Test.txt").write_text(text)
    assert load(tmp_path / "Test.txt").records[0].choices == ("first", "second", "third", "fourth")


def test_logiqa_keeps_letters_inside_option_text(tmp_path):
    text = "\nb\nContext.\nQuestion?\nMost shops in C.S City open early.\nB.No.2 valve\nC.Dr.Li\nD.A only\n"
    (tmp_path / "Test.txt").write_text(text)
    assert load(tmp_path / "Test.txt").records[0].choices == (
        "Most shops in C.S City open early.", "No.2 valve", "Dr.Li", "A only")


def test_math_tree_of_problem_files_is_named_by_path():
    loaded = load(FIXTURES / "math")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("math", "math", "math")
    records = by_id(loaded)
    assert list(records) == ["test/algebra/1", "test/algebra/2", "test/geometry/1"]
    assert records["test/algebra/2"].gold_answer == "\\frac{3}{4}"
    assert records["test/geometry/1"].task == "Geometry"
    assert records["test/geometry/1"].metadata == {"level": "Level 2"}
    assert records["test/algebra/1"].gold_rationale == "Since $x=4$, we get $2x=\\boxed{8}$."
    assert {record.split for record in loaded.records} == {"test"}


def test_math_as_json_array_and_as_json_lines(tmp_path):
    folder = FIXTURES / "math" / "test" / "algebra"
    problems = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    (tmp_path / "problems.json").write_text(json.dumps(problems))
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(problem) + "\n" for problem in problems))
    for name in ("problems.json", "problems.jsonl"):
        loaded = load(tmp_path / name)
        assert loaded.format == "math"
        assert [(r.external_id, r.gold_answer) for r in loaded.records] == [
            ("problems-1", "8"), ("problems-2", "\\frac{3}{4}")]


def test_lema_commonsense_choice_gold_is_the_letter_of_the_answer():
    loaded = load(FIXTURES / "lema" / "csqa_dev.jsonl")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("lema_choice", "csqa", "multiple_choice")
    record = loaded.records[0]
    assert record.question == "Where would you keep milk cold?"
    assert record.choices == ("oven", "fridge", "drawer", "garden", "car")
    assert record.gold_answer == "B"
    assert record.metadata["prompt"].startswith("Please answer the following commonsense question.")


def test_lema_aqua_choice_keeps_the_letter_and_strips_option_prefixes():
    loaded = load(FIXTURES / "lema" / "aqua_test.jsonl")
    assert (loaded.format, loaded.benchmark) == ("lema_choice", "aqua")
    record = loaded.records[0]
    assert record.choices == ("7", "10", "12", "5", "20")
    assert record.gold_answer == "B"
    assert record.question == "A pen costs 2 dollars. How much do 5 pens cost?"


def test_lema_chain_of_thought_gold_is_after_the_answer_is():
    loaded = load(FIXTURES / "lema" / "gsm8k_test.jsonl")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("lema_cot", "gsm8k", "number")
    assert [record.gold_answer for record in loaded.records] == ["24", "15", "1000"]
    record = loaded.records[0]
    assert record.question == "Sam has 4 boxes of 6 eggs. How many eggs does he have?"
    assert record.gold_rationale == "4 boxes of 6 eggs are 4 * 6 = 24 eggs. The answer is 24."


def test_lema_chain_of_thought_with_latex_answers_is_math(tmp_path):
    row = {"prompt": "Question: Simplify 2/4.\nAnswer:", "completion": "Halve it. The answer is $\\frac{1}{2}$."}
    (tmp_path / "math_test.jsonl").write_text(json.dumps(row) + "\n")
    loaded = load(tmp_path / "math_test.jsonl")
    assert (loaded.benchmark, loaded.answer_format) == ("math", "math")
    assert loaded.records[0].gold_answer == "$\\frac{1}{2}$"


def test_gsi_pool_keeps_ids_and_the_worked_answer():
    loaded = load(FIXTURES / "gsi" / "gsm8k.json")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("gsi", "gsm8k", "number")
    record = by_id(loaded)["gsm8k_0"]
    assert record.gold_answer == "30"
    assert record.gold_rationale == "5 pages * 6 days = 30 pages\nThe answer is 30"


def test_gsi_options_become_choices_and_the_question_loses_its_choice_tail():
    loaded = load(FIXTURES / "gsi" / "aqua_rat.json")
    assert (loaded.benchmark, loaded.answer_format) == ("aqua", "multiple_choice")
    record = by_id(loaded)["aqua_rat_1"]
    assert record.question == "A shirt costs $20 after a 20% discount. What was the price before?"
    assert record.choices == ("$16", "$24", "$25", "$30", "$40")
    assert record.gold_answer == "C"


def test_gsi_svamp_ids_name_the_benchmark():
    loaded = load(FIXTURES / "gsi" / "svamp.json")
    assert (loaded.benchmark, loaded.answer_format) == ("svamp", "number")
    assert [record.gold_answer for record in loaded.records] == ["5", "20", "0.75"]


def test_salam_collection_parses_options_and_names_tasks_without_the_shot_suffix():
    loaded = load(FIXTURES / "salam" / "mistake_collections.json")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("salam_collection", "bbh", "multiple_choice")
    assert [record.external_id for record in loaded.records] == [
        "hyperbaton-4", "date_understanding-2", "date_understanding-7"]
    record = loaded.records[1]
    assert record.question == "Today is 03/01/2020. What is the date tomorrow in MM/DD/YYYY?"
    assert (record.choices, record.gold_answer, record.task) == (
        ("03/02/2020", "02/29/2020", "03/01/2021"), "A", "date_understanding")
    assert record.metadata["student_output"] == "(C)"


def test_salam_status_takes_the_split_from_train_set_and_test_set():
    loaded = load(FIXTURES / "salam" / "status.json")
    assert (loaded.format, loaded.benchmark, loaded.answer_format) == ("salam_status", "bbq", "multiple_choice")
    assert [(record.external_id, record.split) for record in loaded.records] == [
        ("Height-0", "train"), ("Height-1", "train"), ("Height-test-1", "test"),
        ("Hobby-0", "train"), ("Hobby-test-1", "test"),
    ]
    assert loaded.records[2].gold_answer == "C"
    assert loaded.records[2].choices == ("The short boy", "The tall boy", "Not known")


def test_a_list_of_uploaded_files_loads_in_the_given_order():
    loaded = load([FIXTURES / "bbq" / "Hobby.jsonl", str(FIXTURES / "bbq" / "Height.jsonl")])
    assert [record.external_id for record in loaded.records][:2] == ["Hobby-0", "Hobby-1"]
    assert len(loaded.records) == 5


def test_explicit_format_reads_a_file_that_fits_it():
    assert load(FIXTURES / "gsm8k" / "test.jsonl", format="gsm8k").format == "gsm8k"


def test_blank_lines_in_json_lines_are_skipped_and_a_bom_is_accepted(tmp_path):
    rows = (FIXTURES / "gsm8k" / "test.jsonl").read_text().splitlines()
    (tmp_path / "data.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n\n".join(rows).encode() + b"\n\n")
    loaded = load(tmp_path / "data.jsonl")
    assert [record.external_id for record in loaded.records] == ["data-1", "data-2", "data-3", "data-4"]


def test_a_bom_before_a_json_array_is_accepted(tmp_path):
    (tmp_path / "svamp.json").write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "svamp" / "SVAMP.json").read_bytes())
    assert len(load(tmp_path / "svamp.json").records) == 3


def test_folders_skip_hidden_and_non_data_files(tmp_path):
    (tmp_path / "README.md").write_text("# notes")
    (tmp_path / ".hidden.jsonl").write_text("not json")
    (tmp_path / "test.jsonl").write_text((FIXTURES / "gsm8k" / "test.jsonl").read_text())
    assert len(load(tmp_path).records) == 4
