"""Bad dataset files fail with a precise DatasetFormatError (file, line or record, field) and no records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.benchmarks import DatasetFormatError, detect_format, load

FIXTURES = Path(__file__).parents[1] / "fixtures" / "benchmarks"
GSM8K_ROW = {"question": "What is 2 + 3?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5"}
SVAMP_ROW = {"ID": "q-1", "Body": "Ann has 2 cats .", "Question": "How many cats?", "Equation": "2", "Answer": 2.0,
             "Type": "Addition"}
BBQ_ROW = {"example_id": 0, "question_index": "1", "question_polarity": "neg", "context_condition": "ambig",
           "category": "Age", "answer_info": {}, "additional_metadata": {}, "context": "Two people met.",
           "question": "Who was late?", "ans0": "The first", "ans1": "The second", "ans2": "Unknown", "label": 2}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value, indent=2))
    return path


def load_error(path: Path | list[Path], format: str | None = None) -> DatasetFormatError:
    with pytest.raises(DatasetFormatError) as caught:
        load(path, format=format)
    return caught.value


def test_invalid_json_names_the_line_and_column(tmp_path):
    path = tmp_path / "svamp.json"
    path.write_text('[\n  {"ID": "q-1",\n   "Body" "Ann has 2 cats ."}\n]')
    error = load_error(path)
    assert (error.path, error.line) == ("svamp.json", 3)
    assert str(error) == "svamp.json, line 3: invalid JSON at column 11: Expecting ':' delimiter"


def test_invalid_json_line_names_its_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(GSM8K_ROW) + "\n{'question': 'single quotes'}\n")
    error = load_error(path)
    assert error.line == 2
    assert "invalid JSON at column 2" in str(error)


def test_json_array_cut_in_the_middle_says_the_file_is_cut_off(tmp_path):
    text = json.dumps([SVAMP_ROW, SVAMP_ROW | {"ID": "q-2"}], indent=2)
    path = tmp_path / "svamp.json"
    path.write_text(text[: len(text) // 2 + 7])
    error = load_error(path)
    assert error.path == "svamp.json" and error.line is not None
    assert "is it cut off?" in str(error)


def test_json_lines_with_the_last_line_cut_name_that_line(tmp_path):
    rows = "".join(json.dumps(GSM8K_ROW) + "\n" for _ in range(3))
    path = tmp_path / "test.jsonl"
    path.write_text(rows + json.dumps(GSM8K_ROW)[:20])
    error = load_error(path)
    assert error.line == 4
    assert "Unterminated string" in str(error) and "is the file cut off?" in str(error)


def test_missing_field_names_line_and_field(tmp_path):
    path = write_jsonl(tmp_path / "test.jsonl", [GSM8K_ROW, {"question": "What is 1 + 1?"}])
    error = load_error(path)
    assert (error.path, error.line, error.field) == ("test.jsonl", 2, "answer")
    assert str(error) == "test.jsonl, line 2, field 'answer': missing"


def test_wrongly_typed_field_names_record_and_field(tmp_path):
    path = write_json(tmp_path / "SVAMP.json", [SVAMP_ROW, SVAMP_ROW | {"ID": "q-2", "Answer": [1, 2]}])
    error = load_error(path)
    assert (error.record, error.field) == (2, "Answer")
    assert str(error) == "SVAMP.json, record 2, field 'Answer': must be a number, got a list"


def test_gsm8k_answer_that_is_a_list_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "test.jsonl", [GSM8K_ROW | {"answer": ["#### 5"]}])
    assert "must be a string, got a list" in str(load_error(path, format="gsm8k"))


def test_bbq_label_out_of_range(tmp_path):
    path = write_jsonl(tmp_path / "Age.jsonl", [BBQ_ROW, BBQ_ROW | {"example_id": 1, "label": 3}])
    error = load_error(path)
    assert (error.line, error.field) == (2, "label")
    assert "label must be 0, 1 or 2, got 3" in str(error)


def test_bbq_label_given_as_text_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "Age.jsonl", [BBQ_ROW | {"label": "2"}])
    assert "must be an integer, got a string" in str(load_error(path))


def test_strategyqa_answer_must_be_a_boolean(tmp_path):
    row = {"qid": "a1", "question": "Is ice cold?", "answer": "yes", "facts": []}
    error = load_error(write_json(tmp_path / "dev.json", [row]))
    assert (error.record, error.field) == (1, "answer")
    assert "must be true or false, got a string" in str(error)


def test_empty_file(tmp_path):
    (tmp_path / "test.jsonl").write_bytes(b"")
    assert str(load_error(tmp_path / "test.jsonl")) == "test.jsonl: file is empty"
    (tmp_path / "blank.jsonl").write_text("\n  \n\n")
    assert str(load_error(tmp_path / "blank.jsonl", format="gsm8k")) == "blank.jsonl: file is empty"


def test_empty_json_array(tmp_path):
    assert "empty JSON array" in str(load_error(write_json(tmp_path / "svamp.json", []), format="svamp"))


def test_bytes_that_are_not_utf8_name_the_byte(tmp_path):
    first = (json.dumps(GSM8K_ROW) + "\n").encode()
    second = json.dumps(GSM8K_ROW | {"question": "Caf\u00e9?"}).encode().replace(b"Caf", b"Caf\xff")
    (tmp_path / "test.jsonl").write_bytes(first + second + b"\n")
    error = load_error(tmp_path / "test.jsonl")
    assert error.line == 2
    bad_byte = len(first) + second.index(b"\xff")
    assert f"not UTF-8 text at byte {bad_byte}" in str(error)


def test_bytes_that_are_not_utf8_in_a_json_array(tmp_path):
    data = json.dumps([SVAMP_ROW]).encode().replace(b"Ann", b"A\xe9nn")
    (tmp_path / "SVAMP.json").write_bytes(data)
    bad_byte = data.index(b"\xe9")
    assert f"not UTF-8 text at byte {bad_byte}" in str(load_error(tmp_path / "SVAMP.json", "svamp"))


def test_gsm8k_answer_without_the_gold_marks(tmp_path):
    path = write_jsonl(tmp_path / "test.jsonl", [GSM8K_ROW | {"answer": "2 + 3 = 5. The answer is 5."}])
    error = load_error(path)
    assert (error.line, error.field) == (1, "answer")
    assert "has no '#### <number>' line" in str(error)


def test_gsm8k_gold_that_is_not_a_number(tmp_path):
    path = write_jsonl(tmp_path / "test.jsonl", [GSM8K_ROW | {"answer": "It is five.\n#### five"}])
    assert "the gold answer after '####' is not a number: 'five'" in str(load_error(path))


def test_duplicate_ids_name_both_records(tmp_path):
    path = write_json(tmp_path / "SVAMP.json", [SVAMP_ROW, SVAMP_ROW | {"ID": "q-2"}, SVAMP_ROW])
    error = load_error(path)
    assert error.record == 3
    assert "duplicate id 'q-1': SVAMP.json record 1 and SVAMP.json record 3" in str(error)


def test_duplicate_generated_ids_across_uploaded_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_jsonl(tmp_path / "a" / "test.jsonl", [GSM8K_ROW])
    second = write_jsonl(tmp_path / "b" / "test.jsonl", [GSM8K_ROW])
    assert "duplicate id 'test-1': test.jsonl line 1 and test.jsonl line 1" in str(load_error([first, second]))


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("picture.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "a PNG image"),
    ("table.csv", b"question,answer\nWhat is 2+2?,4\n", "plain text"),
    ("config.json", b'{"name": "errata", "version": 3}', "an object with keys name, version"),
    ("rows.jsonl", b'{"id": 1, "text": "a"}\n{"id": 2, "text": "b"}\n', "JSON Lines whose first record is"),
    ("numbers.json", b"[1, 2, 3]", "a JSON array whose first record is a number"),
])
def test_files_that_are_not_datasets_are_refused(tmp_path, name, content, expected):
    (tmp_path / name).write_bytes(content)
    for attempt in (detect_format, load):
        with pytest.raises(DatasetFormatError) as caught:
            attempt(tmp_path / name)
        assert f"{name}: not a dataset in any known format" in str(caught.value)
        assert expected in str(caught.value)


def test_a_png_given_an_explicit_format_is_still_refused(tmp_path):
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert str(load_error(tmp_path / "picture.png", format="gsm8k")) == "picture.png: a PNG image, not text"


def test_latin1_text_is_not_utf8(tmp_path):
    text = json.dumps(GSM8K_ROW, ensure_ascii=False).replace("What", "\u00c9t\u00e9 " * 200)
    (tmp_path / "test.jsonl").write_bytes(text.encode("latin-1"))
    for attempt in (detect_format, load):
        with pytest.raises(DatasetFormatError, match="not UTF-8 text at byte 14"):
            attempt(tmp_path / "test.jsonl")


def test_explicit_format_that_does_not_fit_fails_precisely():
    error = load_error(FIXTURES / "svamp" / "SVAMP.json", format="gsm8k")
    assert (error.record, error.field) == (1, "question")
    error = load_error(FIXTURES / "gsm8k" / "test.jsonl", format="logiqa")
    assert error.line == 1 and "expected the blank line" in str(error)
    error = load_error(FIXTURES / "logiqa" / "Eval.txt", format="bbq")
    assert "not JSON or JSON Lines" in str(error)
    assert "BBH task object" in str(load_error(FIXTURES / "gsm8k" / "test.jsonl", format="bbh"))


def test_unknown_format_name():
    assert "unknown format 'csv'" in str(load_error(FIXTURES / "gsm8k", format="csv"))


def test_files_of_different_formats_in_one_load(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [GSM8K_ROW])
    write_json(tmp_path / "b.json", [SVAMP_ROW])
    error = load_error(tmp_path)
    assert "all files of one load must have the same format, but a.jsonl is gsm8k, b.json is svamp" in str(error)


def test_files_of_different_benchmarks_in_one_gsi_load():
    error = load_error([FIXTURES / "gsi" / "aqua_rat.json", FIXTURES / "gsi" / "gsm8k.json"])
    assert "the files mix aqua and gsm8k problems; load them separately" in str(error)


def test_missing_path_and_folder_without_data(tmp_path):
    assert "no such file or folder" in str(load_error(tmp_path / "nothing.jsonl"))
    (tmp_path / "notes.md").write_text("hello")
    assert "folder has no data files" in str(load_error(tmp_path))


def test_json_array_of_non_objects(tmp_path):
    error = load_error(write_json(tmp_path / "SVAMP.json", [SVAMP_ROW, 7]), format="svamp")
    assert str(error) == "SVAMP.json, record 2: expected a JSON object, got a number"


def test_logiqa_wrong_gold_letter_names_its_line(tmp_path):
    good = (FIXTURES / "logiqa" / "Eval.txt").read_text().split("\n")
    good[9] = "e"
    (tmp_path / "Eval.txt").write_text("\n".join(good))
    error = load_error(tmp_path / "Eval.txt")
    assert (error.line, error.field) == (10, "answer")
    assert "expected the gold letter a, b, c or d, got 'e'" in str(error)


def test_logiqa_example_that_ends_early(tmp_path):
    lines = (FIXTURES / "logiqa" / "Eval.txt").read_text().split("\n")[:-1]
    (tmp_path / "Eval.txt").write_text("\n".join(lines))
    error = load_error(tmp_path / "Eval.txt", format="logiqa")
    assert error.line == 24
    assert "the example ends early: option D is missing" in str(error)


def test_logiqa_missing_blank_line_between_examples(tmp_path):
    lines = (FIXTURES / "logiqa" / "Eval.txt").read_text().split("\n")
    del lines[8]
    (tmp_path / "Eval.txt").write_text("\n".join(lines))
    error = load_error(tmp_path / "Eval.txt", format="logiqa")
    assert error.line == 9 and "expected the blank line that starts an example, got 'd'" in str(error)


def test_math_solution_without_boxed_answer(tmp_path):
    problem = {"problem": "What is 1+1?", "level": "Level 1", "type": "Algebra", "solution": "It is 2."}
    error = load_error(write_json(tmp_path / "3.json", problem))
    assert error.field == "solution" and "has no \\boxed{...} final answer" in str(error)


def test_bbh_letter_target_outside_the_options(tmp_path):
    task = {"canary": "x", "examples": [{"input": "Pick.\nOptions:\n(A) one\n(B) two", "target": "(C)"}]}
    error = load_error(write_json(tmp_path / "snarks.json", task))
    assert (error.record, error.field) == (1, "target")
    assert "target '(C)' is not one of the options (A)-(B)" in str(error)


def test_lema_answer_that_is_not_a_candidate(tmp_path):
    row = {"prompt": "Question: Where?\nAnswer:", "answer": "moon", "candidates": ["home", "park"]}
    error = load_error(write_jsonl(tmp_path / "csqa.jsonl", [row]))
    assert (error.line, error.field) == (1, "answer") and "'moon' is not one of the candidates" in str(error)


def test_lema_completion_without_the_answer_sentence(tmp_path):
    row = {"prompt": "Question: 2+2?\nAnswer:", "completion": "It is four."}
    assert "has no 'The answer is ...' sentence" in str(load_error(write_jsonl(tmp_path / "t.jsonl", [row])))


def test_gsi_answer_letter_outside_the_options(tmp_path):
    row = {"item_id": "aqua_rat_0", "question": "Pick.", "options": ["A)1", "B)2"], "answer_value": "E"}
    error = load_error(write_json(tmp_path / "aqua_rat.json", [row]))
    assert (error.record, error.field) == (1, "answer_value")
    assert "must be one of the letters A, B, got 'E'" in str(error)


def test_salam_status_errors_name_the_task_and_set(tmp_path):
    row = {"response/prompt_str": "Who?\nOptions:\n(A) x\n(B) y", "response/target_str": "(A)"}
    status = {"Age_zero_shot": {"train_set": [row, {"response/prompt_str": "Who?"}], "test_set": []}}
    error = load_error(write_json(tmp_path / "status.json", status))
    assert str(error) == (
        "status.json, record 2, field 'response/target_str': Age_zero_shot train_set: missing")


def test_error_keeps_no_partial_records(tmp_path):
    rows = [GSM8K_ROW] * 5 + [{"question": "x"}]
    with pytest.raises(DatasetFormatError):
        loaded = load(write_jsonl(tmp_path / "test.jsonl", rows))
        assert not loaded  # never reached: a bad record fails the whole load
