"""Scorers for yes/no answers (StrategyQA, BBH's True/False, Yes/No, valid/invalid): Errata's default and FAIR's rule."""

from __future__ import annotations

import re

from pipeline.scoring.common import NOTHING, Score, marked_answer, scorer

TRUE_WORDS = frozenset({"true", "yes", "valid"})
FALSE_WORDS = frozenset({"false", "no", "invalid"})
# Each family: the words accepted as a final answer, and the words trusted when scanning prose
# (where "no" and "valid" are too common to mean an answer unless the gold is spelled that way).
_FAMILIES = (
    (frozenset({"true", "false", "yes", "no"}), frozenset({"true", "false"})),
    (frozenset({"yes", "no", "true", "false"}), frozenset({"yes", "no"})),
    (frozenset({"valid", "invalid"}), frozenset({"valid", "invalid"})),
)
# A model that repeats the question's "True or False:" (or asks for "true" or "false") has not answered.
_ECHOED_CHOICE = re.compile(
    r"[\"'“]?\b(?:true|yes|valid)\b[\"'”]?\s+or\s+[\"'“]?(?:false|no|invalid)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")


def gold_truth(gold: str) -> bool | None:
    """True/False for a gold answer: "true", "Yes", "valid", FAIR's "true.\\t<facts>"; None when it is none of them."""
    first = _WORD.search(gold.strip().lower())
    if first is None or first.start() > 0:
        return None
    return _truth(first.group(0))


@scorer
def boolean(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """Default yes/no rule: the yes/no word after the last final-answer marker, else the one opening the output, else the last one.

    True/false and yes/no are read as the same answer where the model states it (StrategyQA
    models say "Yes" to a "true" gold); when scanning prose only the gold's own pair counts,
    since "no" and "valid" are common words. A repeated "True or False:" prompt is ignored.
    """
    expected = gold_truth(gold)
    answers, scanned = _vocabulary(gold)
    word = _final_word(_ECHOED_CHOICE.sub(" ", output), answers, scanned)
    if word is None:
        return NOTHING
    return Score(word, expected is not None and _truth(word) == expected)


def _final_word(text: str, answers: frozenset[str], scanned: frozenset[str]) -> str | None:
    marked = marked_answer(text)
    if marked is not None:
        found = _words(marked.text, answers)
        if found:
            return found[0]
    words = _WORD.findall(text.lower())
    if words and words[0] in answers:
        return words[0]
    found = _words(text, scanned)
    return found[-1] if found else None


def _words(text: str, vocabulary: frozenset[str]) -> list[str]:
    return [word for word in _WORD.findall(text.lower()) if word in vocabulary]


def _vocabulary(gold: str) -> tuple[frozenset[str], frozenset[str]]:
    first = _WORD.search(gold.lower())
    for answers, scanned in _FAMILIES:
        if first and first.group(0) in scanned:
            return answers, scanned
    return _FAMILIES[0]


def _truth(word: str) -> bool | None:
    if word in TRUE_WORDS:
        return True
    return False if word in FALSE_WORDS else None


# --- StrategyQA (FAIR infer_student_wrong.py, cleanup) ------------------------------------------


@scorer
def strategyqa_bool(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """FAIR's StrategyQA rule: "true" anywhere in the lower-cased output -> true, else "false" anywhere -> false; ==.

    An output with neither word is wrong (the seed's ABSOLUTE_WRONG_FINAL_ANS; 278 of the 825
    records in its released file), not "false". Quirks kept: "true" is looked for first and as a
    substring, so "untrue", "True or False: ..." and "it is not true, so false" all read as true.
    """
    lowered = output.lower()
    if "true" in lowered:
        found = "true"
    elif "false" in lowered:
        found = "false"
    else:
        return NOTHING
    return Score(found, (found == "true") == gold_truth(gold))
