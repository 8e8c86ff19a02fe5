"""Scorers for free-form short answers (normalised text match) and for BBH, whose targets mix every answer kind."""

from __future__ import annotations

import re

from pipeline.scoring.boolean import boolean, gold_truth
from pipeline.scoring.choices import choice, normal_text
from pipeline.scoring.common import NOTHING, Score, marked_answer, scorer
from pipeline.scoring.numeric import numeric

_BBH_OPTION = re.compile(r"\([A-Za-z]\)(?:\s|$)")  # "(A)", or SALAM's whole option "(a) 02/16/2009"
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_BARE_LETTER = re.compile(r"[A-Za-z]")


@scorer
def text(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """Default free-form rule: the answer after the last final-answer marker, else the last line; normalised ==.

    Case, spacing, commas, end punctuation and markdown are ignored; for answers made only of
    symbols (BBH's Dyck closers "] ] )") spaces are ignored too.
    """
    answer = final_text(output)
    if not answer:
        return NOTHING
    return Score(answer, same_text(answer, gold))


def final_text(output: str) -> str:
    """The short answer in a free-form output: after the last marker, else its last non-empty line."""
    marked = marked_answer(output)
    if marked is not None and marked.text:
        return marked.text.strip().rstrip(".").strip()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1].rstrip(".").strip() if lines else ""


def same_text(answer: str, gold: str) -> bool:
    """Equal once case, commas, spacing, end punctuation and markdown are set aside."""
    return bool(gold.strip()) and _comparable(answer) == _comparable(gold)


def _comparable(text: str) -> str:
    text = normal_text(text.replace("**", "").replace(",", " "))
    if not any(char.isalnum() for char in text):
        return "".join(text.split())
    return " ".join(text.split())


@scorer
def bbh(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """Default BBH rule: pick the rule from the gold. "(A)" -> choice, True/Yes/valid -> boolean, "12" -> numeric, else text.

    Errata's loader stores a multiple-choice gold as the bare letter with the options in ``choices``:
    a one-letter gold with choices is an option too.
    """
    target = gold.strip()
    if _BBH_OPTION.match(target) or (choices and _BARE_LETTER.fullmatch(target)):
        return choice(output, gold, choices)
    if gold_truth(target) is not None and " " not in target:
        return boolean(output, gold, choices)
    if _PLAIN_NUMBER.fullmatch(target):
        return numeric(output, gold, choices)
    if not target:
        return NOTHING
    return text(output, gold, choices)
