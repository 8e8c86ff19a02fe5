"""SALAM's finetune data: ``{"type": "text2text", "instances": [{input, output}]}``, read, parsed and rendered.

Each instance is one mistake and the teacher's feedback on it. ``input`` is SALAM's feedback prompt, in
the released ``bbq_src_data.json`` always laid out as (514 of 514 instances)::

    <question>\\nOptions:\\n(A) ...\\n(B) ...
    We get the answer <the student's answer> from the model while the true answer is <gold>. \\n
    Please return a json with the following keys: ... (a fixed instruction, see ``INSTRUCTION``)

so the question, the student's answer (SALAM's extracted ``response/output``: "(A)" mostly, but also "A",
"( A )" or a whole sentence) and the gold ("(B)") can be recovered. ``output`` is a JSON string
``{"reason": ..., "guideline": ...}`` written by GPT-4 (the file itself names no teacher); one that does
not parse is kept with its error, never raised.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.fields import json_kind, text_field
from pipeline.benchmarks.options import parenthesised_letter, split_lettered_options
from pipeline.benchmarks.reading import Item, SourceFile, json_document
from pipeline.benchmarks.records import DatasetFormatError, ProblemRecord
from pipeline.prompts import answer_text
from pipeline.seeds.salam import prompt_text

FILE_TYPE = "text2text"
OUTPUT_KEYS = ("reason", "guideline")
INSTRUCTION = (
    "Please return a json with the following keys:\n"
    "    reason: explain the potential reason of the model prediction\n"
    "    guideline: based on the reason, provide an instruction as a prompt for the model to avoid similar "
    "mistakes\n"
    "Please do not mention the true answer or any specific option content in your response."
)
# Lazy on both answers: the first " from the model while" and the first ". \n" after it end them.
INPUT_LAYOUT = re.compile(
    r"(?P<question>.*)\nWe get the answer (?P<wrong>.*?) from the model while the true answer is "
    r"(?P<gold>.*?)\. \n" + re.escape(INSTRUCTION) + r"\Z",
    re.DOTALL,
)


@dataclass(frozen=True)
class FinetuneInstance:
    """One instance: the prompt, the raw output, and the feedback parsed from it (``ok`` False: see ``error``)."""

    input: str
    output_raw: str
    reason: str | None
    guideline: str | None
    ok: bool
    error: str = ""


class SalamInput(NamedTuple):
    """What a SALAM feedback prompt is made of: the question (options included), the student's answer, the gold."""

    question: str
    wrong_answer: str
    true_answer: str


# --- reading ---------------------------------------------------------------------------------------

def read_salam_finetune(path: str | Path) -> list[FinetuneInstance]:
    """Every instance of a SALAM finetune file; a file of another shape raises ``DatasetFormatError``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError("no such file", path=str(path))
    source = SourceFile(path, path.name)
    return [_instance(item) for item in _instance_items(source, json_document(source))]


def _instance_items(source: SourceFile, data: Any) -> list[Item]:
    shape = 'SALAM finetune data: {"type": "text2text", "instances": [{"input": ..., "output": ...}]}'
    if not isinstance(data, dict):
        raise source.error(f"expected {shape}, got {json_kind(data)}")
    if data.get("type") != FILE_TYPE:
        raise source.error(f"must be {FILE_TYPE!r} in {shape}, got {data.get('type')!r}", field="type")
    instances = data.get("instances")
    if not isinstance(instances, list):
        raise source.error(f"must be a list in {shape}, got {json_kind(instances)}", field="instances")
    if not instances:
        raise source.error("holds no instances", field="instances")
    items = [Item(value, source, number, record=number) for number, value in enumerate(instances, start=1)]
    for item in items:
        if not isinstance(item.value, dict):
            raise item.error(f"expected a JSON object {{input, output}}, got {json_kind(item.value)}")
    return items


def _instance(item: Item) -> FinetuneInstance:
    prompt, output = text_field(item, "input"), text_field(item, "output")
    reason, guideline, error = parse_output(output)
    return FinetuneInstance(prompt, output, reason, guideline, ok=not error, error=error)


def parse_output(text: str) -> tuple[str | None, str | None, str]:
    """(reason, guideline, "") from a ``{"reason", "guideline"}`` JSON string; (None, None, why) when it is not one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return None, None, f"output is not JSON: {error.msg} at character {error.pos}"
    if not isinstance(value, dict):
        return None, None, f"output is {json_kind(value)}, not a JSON object"
    missing = [key for key in OUTPUT_KEYS if key not in value]
    if missing:
        return None, None, f"output has no {' and no '.join(repr(key) for key in missing)}"
    wrong_kind = [key for key in OUTPUT_KEYS if not isinstance(value[key], str)]
    if wrong_kind:
        return None, None, f"output's {wrong_kind[0]!r} is {json_kind(value[wrong_kind[0]])}, not a string"
    return value["reason"], value["guideline"], ""


# --- the input's layout ----------------------------------------------------------------------------

def parse_salam_input(text: str) -> SalamInput | None:
    """The question, the student's answer and the gold inside a SALAM prompt; None when it has another layout."""
    match = INPUT_LAYOUT.fullmatch(text)
    return SalamInput(match["question"], match["wrong"], match["gold"]) if match else None


def split_salam_input(text: str) -> tuple[str, str] | None:
    """(question, the student's wrong answer) from a SALAM prompt; None when it has another layout."""
    parsed = parse_salam_input(text)
    return (parsed.question, parsed.wrong_answer) if parsed else None


def render_input(question: str, wrong_answer: str, true_answer: str) -> str:
    """SALAM's feedback prompt, exactly as the released file writes it (``parse_salam_input`` reverses it)."""
    return (f"{question}\nWe get the answer {wrong_answer} from the model while the true answer is "
            f"{true_answer}. \n{INSTRUCTION}")


def render_output(reason: str, guideline: str) -> str:
    """The output string SALAM trains on: ``json.dumps`` of {reason, guideline}, as in the released file."""
    return json.dumps({"reason": reason, "guideline": guideline})


# --- as Errata's problems and attempts ------------------------------------------------------------

def instance_records(instance: FinetuneInstance, external_id: str) -> tuple[ProblemRecord, AttemptRecord] | None:
    """The problem and the student's wrong answer an instance is about; None when its input has another layout.

    Lettered options become choices and a "(B)" gold the letter, but only when rendering them back
    gives the same prompt; otherwise the question keeps its text as written and the gold its text.
    """
    parsed = parse_salam_input(instance.input)
    if parsed is None:
        return None
    problem = _problem(parsed, external_id)
    wrong = AttemptRecord(problem_external_id=external_id, output=parsed.wrong_answer,
                          extracted=parsed.wrong_answer, correct=False)
    return problem, wrong


def _problem(parsed: SalamInput, external_id: str) -> ProblemRecord:
    plain = ProblemRecord(external_id=external_id, question=parsed.question, gold_answer=parsed.true_answer)
    options = split_lettered_options(parsed.question)
    letter = parenthesised_letter(parsed.true_answer)
    if options is None or letter is None:
        return plain
    question, choices = options
    lettered = ProblemRecord(external_id=external_id, question=question, gold_answer=letter, choices=choices)
    same = prompt_text(lettered) == parsed.question and answer_text(lettered) == parsed.true_answer
    return lettered if same and ord(letter) - ord("A") < len(choices) else plain
