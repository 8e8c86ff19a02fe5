"""Scorers for answers that are one number (GSM8K, SVAMP, demo): Errata's default and the LEMA, GSI and FAIR rules."""

from __future__ import annotations

import re
import string

from pipeline.scoring.arithmetic import evaluate
from pipeline.scoring.common import NOTHING, Score, marked_answer, scorer
from pipeline.scoring.numbers import Number, first_number, gold_number, last_number, same_number

# --- Errata's default -------------------------------------------------------------------------

_LATEX_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


@scorer
def numeric(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """Default number rule: the number after the last final-answer marker, else the last number; tolerant equality.

    Markers are "The answer is", "Answer:", "####", "[[Final Answer]]:" and \\boxed{}; after a marker
    the first line with text is read, and where it is a worked line ("290 / 2 = 145") the number after
    its last "=" is the answer. Gold and answer are compared as values within a relative 1e-6, so
    "$1,234.00", "1234" and "1,234" agree, "3/4" equals 0.75 and "50%" equals 50.
    """
    found = final_number(output)
    if found is None:
        return NOTHING
    expected = gold_number(gold)
    if expected is None:
        value = evaluate(gold)
        expected = Number(value, gold) if value is not None else None
    return Score(found.text, expected is not None and same_number(found, expected))


def final_number(text: str) -> Number | None:
    """The number a model gave as its final answer (see `numeric`)."""
    marked = marked_answer(text)
    if marked is not None:
        found = answer_number(marked.text)
        if found is not None:
            return found
    return last_number(text)


def answer_number(answer: str) -> Number | None:
    """The number in a short final-answer text: after its last "=" when it shows the working."""
    answer = _LATEX_WRAPPERS.sub(r"\1", answer).replace("**", "")
    if "=" in answer:
        answer = answer.rsplit("=", 1)[1]
    return first_number(answer)


# --- LEMA (microsoft/LEMA inference_code/utils.py, get_final_result_gsm8k) ---------------------

LEMA_TRIGGER = "The answer is "


@scorer
def lema_gsm8k(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """LEMA's GSM8K rule: text after the last "The answer is ", units and currency stripped, evaluated; float ==.

    Quirks kept: every ASCII letter is deleted, wherever it is (so "18 eggs" -> "18", but
    "18 eggs and 2 hens" -> "182"); only $, £, € and quotes are removed, so "¥5" is unreadable;
    "9 * 2 = 18" keeps what follows the last "="; "50%" counts as the bare number 50.
    The seed scored a missing answer as 0.0 and asserted gold != 0; here it is simply "nothing".
    """
    found = _lema_value(output)
    expected = _lema_value(gold if LEMA_TRIGGER.strip() in gold else LEMA_TRIGGER + gold)
    if found is None:
        return NOTHING
    return Score(_plain(found), expected is not None and found == expected)


def _lema_value(completion: str) -> float | None:
    for stop in ("\n\nQ: ", "\n\nQuestion: "):
        completion = completion.split(stop)[0]
    completion = completion.replace("The answer is: ", LEMA_TRIGGER)
    if LEMA_TRIGGER not in completion:
        return None
    result = completion.split(LEMA_TRIGGER)[-1]
    result = result[:-1] if result.endswith(".") else result
    result = result.replace("£", "").replace("€", "")
    result = result[:-1] if result.endswith(".") else result
    result = result.replace(",", "")
    for separator in ("=", ">>"):
        if separator in result:
            result = result.split(separator)[-1].strip()
    return _lema_number(result)


def _lema_number(result: str) -> float | None:
    result = "".join(char for char in result.lower() if char not in string.ascii_lowercase)
    result = result.split(":")[0].replace("$", "").replace('"', "")
    if "%" in result:
        result = result.strip()
        if not result.endswith("%"):
            return None
        result = result[:-1]
    if not result:
        return None
    result = result[:-1] if result.endswith("/") else result
    result = result.replace(" ", "")
    if any(operator in result for operator in "+-*/"):
        return evaluate(result)  # the seed called eval() here; never do that on model text
    try:
        return float(result)
    except ValueError:
        return None


# --- GSI (Guided-Self-Improvement evaluation) ---------------------------------------------------

GSI_TRIGGER = "The answer is"
_GSI_NUMBER = re.compile(r"-?\d+/?\.?\d*")


@scorer
def gsi_numeric(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """GSI's rule: after the last "The answer is", the FIRST number, else the last number; trailing zeros dropped; exact string ==.

    Quirk kept: "The answer is 5 + 3 = 8" gives 5, the first number after the trigger.
    """
    found = _gsi_extract(output)
    if found is None:
        return NOTHING
    return Score(found, found == _gsi_normalise(gold.strip().replace(",", "")))


def _gsi_extract(text: str) -> str | None:
    parts = text.split(GSI_TRIGGER)
    after_trigger = len(parts) > 1
    tail = parts[-1].strip("\n").rstrip(".").rstrip("/").strip(" ").lstrip(":")
    numbers = [_gsi_normalise(number) for number in _GSI_NUMBER.findall(tail.replace(",", ""))]
    if not numbers:
        return None
    return (numbers[0] if after_trigger else numbers[-1]).rstrip(".").rstrip("/")


def _gsi_normalise(number: str) -> str:
    """Drop trailing zeros the way GSI does: "5.00" -> "5", "0.50" -> "0.5", "3/4" -> "0.75"; non-numbers stay."""
    try:
        value = float(number)
    except ValueError:
        value = evaluate(number)
    if value is None:
        return number
    text = str(value).rstrip("0")
    return str(int(text.rstrip("."))) if text.endswith(".") else str(float(text))


# --- FAIR (Learn-from-Committee infer_student_wrong.py, cleanup) -------------------------------

FAIR_TRIGGERS = ("\nAnswer", "Therefore, the answer is")
_FAIR_NUMBER = re.compile(r"-?\d+\.?\d*")


@scorer
def fair_numeric(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """FAIR's GSM8K/SVAMP rule: first number after "\\nAnswer" or "Therefore, the answer is", else the last number; exact string ==.

    Quirk kept (it is why FAIR's SVAMP file holds right answers labelled wrong): the seed strips
    the output before looking for "\\nAnswer", so an output that *starts* with "Answer:" has no
    trigger and the last number of the whole text wins. Record id 0: "Answer:\\n\\nGroup of
    bananas: 290 / 2 = 145\\n\\nGroup of oranges: 87 / 93 = 0.92" is scored "0.92", not 145.
    Also kept: the text after the FIRST trigger is used, and "18.00" never equals "18".
    """
    found = _fair_extract(output)
    if found is None:
        return NOTHING
    return Score(found, found == gold.strip())


def _fair_extract(text: str) -> str | None:
    text = text.strip()
    after_trigger = False
    for trigger in FAIR_TRIGGERS:
        if trigger in text:
            text, after_trigger = text.split(trigger)[1].strip(), True
            break
    numbers = [number.strip(".") for number in _FAIR_NUMBER.findall(text.replace(",", ""))]
    if not numbers:
        return None
    return numbers[0] if after_trigger else numbers[-1]


def _plain(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
