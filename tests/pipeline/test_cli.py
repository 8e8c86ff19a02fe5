"""Tests for `python -m pipeline`: the score and check-labels commands, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "seeds"

RIGHT_GSM8K = {"benchmark": "gsm8k", "gold": "18", "output": "9 * 2 = 18. The answer is 18."}
WRONG_GSM8K = {"benchmark": "gsm8k", "gold": "18", "output": "9 + 2 = 11. The answer is 11.", "id": "q2"}
RIGHT_STRATEGYQA = {"benchmark": "strategyqa", "gold": "true", "output": "True, penguins are birds."}


def run_pipeline(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=120)


def write_jsonl(path: Path, *records: dict | str) -> Path:
    lines = [record if isinstance(record, str) else json.dumps(record) for record in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# --- score ------------------------------------------------------------------------------------------

def test_score_prints_each_record_with_extracted_and_correct(tmp_path):
    path = write_jsonl(tmp_path / "answers.jsonl", RIGHT_GSM8K, WRONG_GSM8K, RIGHT_STRATEGYQA)
    result = run_pipeline("score", str(path))
    assert result.returncode == 0, result.stderr
    records = jsonl(result.stdout)
    assert [record["correct"] for record in records] == [True, False, True]
    assert [record["extracted"] for record in records[:2]] == ["18", "11"]
    assert records[1] == {**WRONG_GSM8K, "extracted": "11", "correct": False}  # every field kept


def test_score_summary_counts_records_and_accuracy(tmp_path):
    path = write_jsonl(tmp_path / "answers.jsonl", RIGHT_GSM8K, WRONG_GSM8K, RIGHT_STRATEGYQA, WRONG_GSM8K)
    result = run_pipeline("score", str(path), "--summary")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"records": 4, "correct": 2, "accuracy": 0.5}


def test_score_summary_of_three_rounds_accuracy(tmp_path):
    path = write_jsonl(tmp_path / "answers.jsonl", RIGHT_GSM8K, WRONG_GSM8K, RIGHT_STRATEGYQA)
    summary = json.loads(run_pipeline("score", str(path), "--summary").stdout)
    assert summary == {"records": 3, "correct": 2, "accuracy": pytest.approx(2 / 3, abs=1e-4)}


def test_score_summary_of_an_empty_file_has_no_accuracy(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    result = run_pipeline("score", str(path), "--summary")
    assert json.loads(result.stdout) == {"records": 0, "correct": 0, "accuracy": None}


def test_score_reads_stdin_when_file_is_a_dash():
    stdin = json.dumps(RIGHT_GSM8K) + "\n\n" + json.dumps(WRONG_GSM8K) + "\n"  # blank lines are skipped
    result = run_pipeline("score", "-", "--summary", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"records": 2, "correct": 1, "accuracy": 0.5}


def test_a_scorer_option_overrides_the_benchmark_default(tmp_path):
    # a gsm8k record scored as a yes/no answer: the default finds no number, strategyqa_bool finds "true"
    record = {"benchmark": "gsm8k", "gold": "true", "output": "That is true."}
    path = write_jsonl(tmp_path / "answers.jsonl", record)
    assert jsonl(run_pipeline("score", str(path)).stdout)[0]["correct"] is False
    overridden = jsonl(run_pipeline("score", str(path), "--scorer", "strategyqa_bool").stdout)[0]
    assert overridden["correct"] is True


def test_a_scorer_option_makes_the_benchmark_optional(tmp_path):
    path = write_jsonl(tmp_path / "answers.jsonl", {"gold": "true", "output": "True."})
    result = run_pipeline("score", str(path), "--scorer", "strategyqa_bool", "--summary")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["correct"] == 1


def test_score_passes_choices_to_the_scorer(tmp_path):
    record = {"benchmark": "bbh", "gold": "B", "output": "(B)", "choices": ["03/05/2021", "03/03/2021"]}
    path = write_jsonl(tmp_path / "answers.jsonl", record)
    result = run_pipeline("score", str(path), "--scorer", "salam_mc")
    assert result.returncode == 0, result.stderr
    assert jsonl(result.stdout)[0]["correct"] is True


@pytest.mark.parametrize(("bad_line", "expected"), [
    ("{not json", "line 2: invalid JSON"),
    ('["a", "list"]', "line 2: expected a JSON object"),
    ('{"benchmark": "gsm8k", "output": "The answer is 3."}', "line 2, field 'gold'"),
    ('{"benchmark": "gsm8k", "gold": "3"}', "line 2, field 'output'"),
    ('{"gold": "3", "output": "3"}', "line 2, field 'benchmark'"),
    ('{"benchmark": "tarot", "gold": "3", "output": "3"}', "line 2, field 'benchmark': unknown benchmark"),
    ('{"benchmark": "gsm8k", "gold": ["3"], "output": "3"}', "line 2, field 'gold'"),
    ('{"benchmark": "bbh", "gold": "A", "output": "(A)", "choices": "A B"}', "line 2, field 'choices'"),
])
def test_a_bad_line_exits_2_naming_the_line_and_field(tmp_path, bad_line, expected):
    path = write_jsonl(tmp_path / "answers.jsonl", RIGHT_GSM8K, bad_line, WRONG_GSM8K)
    result = run_pipeline("score", str(path), "--summary")
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stdout == ""  # nothing half-printed


def test_without_summary_lines_before_a_bad_one_are_already_out(tmp_path):
    path = write_jsonl(tmp_path / "answers.jsonl", RIGHT_GSM8K, "{oops", WRONG_GSM8K)
    result = run_pipeline("score", str(path))
    assert result.returncode == 2
    assert len(jsonl(result.stdout)) == 1  # streamed: the good first line was written whole
    assert "line 2" in result.stderr


def test_an_unknown_scorer_exits_2_before_reading(tmp_path):
    path = write_jsonl(tmp_path / "answers.jsonl", RIGHT_GSM8K)
    result = run_pipeline("score", str(path), "--scorer", "astrology")
    assert result.returncode == 2
    assert "unknown scorer 'astrology'" in result.stderr
    assert result.stdout == ""


def test_a_missing_file_exits_2(tmp_path):
    result = run_pipeline("score", str(tmp_path / "nowhere.jsonl"))
    assert result.returncode == 2
    assert "nowhere.jsonl" in result.stderr


def test_no_command_exits_2_with_usage():
    result = run_pipeline()
    assert result.returncode == 2
    assert "usage" in result.stderr


# --- check-labels -----------------------------------------------------------------------------------

def test_check_labels_prints_one_json_report():
    result = run_pipeline("check-labels", str(FIXTURES / "salam/bbh/mistake_collections.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "salam_mistake_collection"
    assert (report["records"], report["agree"], report["disagree"]) == (4, 2, 2)
    assert {"index", "gold", "output", "extracted", "label", "rescored"} <= set(report["examples"][0])


def test_check_labels_takes_a_format_and_an_examples_limit(tmp_path):
    path = tmp_path / "collection.json"
    path.write_bytes((FIXTURES / "salam/bbh/correct_collections.json").read_bytes())
    result = run_pipeline("check-labels", str(path), "--format", "salam_correct_collection", "--examples", "0")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["records"], report["disagree"], report["examples"]) == (3, 1, [])


def test_check_labels_refuses_a_file_of_another_shape(tmp_path):
    path = write_jsonl(tmp_path / "gsm8k.json", RIGHT_GSM8K)
    result = run_pipeline("check-labels", str(path))
    assert result.returncode == 2
    assert "not a seed file with labels" in result.stderr
    assert result.stdout == ""


def test_check_labels_can_rescore_with_another_scorer():
    path = FIXTURES / "fair/Tiny-student_svamp_false_round0.json"
    result = run_pipeline("check-labels", str(path), "--scorer", "numeric")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["scorer"], report["records"], report["disagree"]) == ("numeric", 5, 2)


def test_check_labels_refuses_an_unknown_scorer():
    result = run_pipeline("check-labels", str(FIXTURES / "salam/bbq/status.json"), "--scorer", "astrology")
    assert result.returncode == 2
    assert "unknown scorer" in result.stderr
