"""Scorers for MATH-style answers: Errata's default, LEMA's boxed/"The answer is" rule and LbT's [[Final Answer]] rule."""

from __future__ import annotations

import re

from pipeline.latex import last_boxed
from pipeline.scoring.common import NOTHING, Score, marked_answer, scorer
from pipeline.scoring.math_normalise import NotNormalisable, errata_normalise, hendrycks_strip, minerva_normalise
from pipeline.scoring.math_value import equivalent_values
from pipeline.scoring.numbers import last_number

# --- Errata's default -------------------------------------------------------------------------

_INLINE_MATH = re.compile(r"\$([^$]+)\$|\\\((.+?)\\\)")
_SENTENCE_END = re.compile(r"\.(?:\s|$)")


@scorer
def math_answer(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """Default MATH rule: the last final answer (\\boxed{}, "The answer is", "[[Final Answer]]:", "Answer:"), equivalence.

    Equivalent means equal after Hendrycks' normalisation (extended: \\text{} units, "1,000",
    degrees, percent), else the same value when both sides evaluate ("0.25" = "\\frac14",
    "2\\sqrt3" = "\\sqrt{12}", "x^2+2x+1" = "(x+1)^2"), else the same items in the same order for
    tuples and lists ("(1, \\frac12)" = "(1,0.5)"). Without any marker the last number is used.
    """
    extracted = final_math_answer(output)
    if extracted is None:
        return NOTHING
    return Score(extracted, math_equivalent(extracted, _gold_answer(gold)))


def final_math_answer(text: str) -> str | None:
    """The final answer of a MATH solution, as written (LaTeX), or None."""
    marked = marked_answer(text)
    if marked is not None and marked.text:
        return marked.text if marked.boxed else _clean_answer(marked.text)
    found = last_number(text)
    return found.text if found else None


def math_equivalent(answer: str, gold: str) -> bool:
    """Whether two MATH answers are the same: normalised strings, then values, then item by item."""
    normal_answer, normal_gold = errata_normalise(answer), errata_normalise(gold)
    if normal_answer == normal_gold:
        return True
    if equivalent_values(normal_answer, normal_gold):
        return True
    return _same_items(normal_answer, normal_gold)


def _gold_answer(gold: str) -> str:
    boxed = last_boxed(gold) if "\\boxed" in gold or "\\fbox" in gold else None
    return boxed if boxed is not None else gold


def _clean_answer(answer: str) -> str:
    """The math in a one-line answer: "$\\frac{1}{2}$. I hope it is correct." -> "\\frac{1}{2}"."""
    answer = answer.strip().replace("**", "")
    inline = _INLINE_MATH.search(answer)
    if inline:
        return (inline.group(1) or inline.group(2)).strip()
    sentence_end = _SENTENCE_END.search(answer)
    if sentence_end:
        answer = answer[:sentence_end.start()]
    return answer.strip().rstrip(".").strip()


def _same_items(answer: str, gold: str) -> bool:
    answer_items, gold_items = _items(answer), _items(gold)
    if answer_items is None or gold_items is None or len(answer_items) != len(gold_items):
        return False
    return all(a == g or equivalent_values(a, g) for a, g in zip(answer_items, gold_items))


def _items(answer: str) -> list[str] | None:
    """Top-level items of a tuple, interval or list, its brackets first: "(1,2]" -> ["(]", "1", "2"]."""
    opening, closing = answer[:1], answer[-1:]
    bracketed = opening in "([{" and closing in ")]}" and len(answer) > 1
    inner = answer[1:-1] if bracketed else answer
    items, depth, start = [], 0, 0
    for index, char in enumerate(inner):
        depth += 1 if char in "([{" else -1 if char in ")]}" else 0
        if char == "," and depth == 0:
            items.append(inner[start:index])
            start = index + 1
    items.append(inner[start:])
    if len(items) < 2:
        return None
    return ([opening + closing] if bracketed else []) + items


# --- LEMA (microsoft/LEMA inference_code/utils.py, get_final_result_math) ------------------------

LEMA_TRIGGER = "The answer is "


@scorer
def math_boxed(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """LEMA's MATH rule: text after the last "The answer is ", else the last \\boxed{...}; Hendrycks-normalised ==.

    Quirks kept: only "\\boxed{" counts (not "\\fbox" or "\\boxed 5"); "0.5" is rewritten to
    "\\frac{1}{2}" but "0.25" is not rewritten to "\\frac{1}{4}", so those two never match; an
    answer the normaliser chokes on (two "\\text{ " units, a trailing "\\sqrt") scores wrong.
    """
    extracted = _lema_math_answer(output)
    if extracted is None:
        return NOTHING
    expected = _lema_normalise(_gold_answer(gold))
    return Score(extracted, bool(extracted) and extracted == expected)


def _lema_math_answer(completion: str) -> str | None:
    for stop in ("Q:", "Question:"):
        if stop in completion:
            completion = completion.split(stop)[0].strip()
    completion = completion.replace("The answer is: ", LEMA_TRIGGER)
    if LEMA_TRIGGER not in completion:
        result = _boxed_only(completion)
    else:
        result = completion.split(LEMA_TRIGGER)[-1].strip()
        result = result[:-1] if result.endswith(".") else result
        result = result.replace("$", "").strip()
        if "boxed{" in result:
            result = _boxed_only(result)
    return _lema_normalise(result) if result else None


def _boxed_only(text: str) -> str | None:
    at = text.rfind("\\boxed")
    if at < 0 or not text.startswith("\\boxed{", at):
        return None
    return last_boxed(text[at:])


def _lema_normalise(answer: str | None) -> str | None:
    if not answer:
        return None
    try:
        return hendrycks_strip(answer)
    except NotNormalisable:
        return None


# --- LbT (imagination-research/lbt lbt/datasets_adapter/math_dataset.py, MathExamScorer) -------

_LBT_SEED_MARKER = re.compile(r"\[\[Final Answer\]\]:\n([^\n]+)\n")
# The seed's Minerva rewrite is quadratic on a long line full of "\boxed{"; no real answer is this long.
MAX_LBT_ANSWER = 2000


@scorer
def lbt_math(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """LbT's MATH rule: the line after "[[Final Answer]]:", else the last line; Minerva rewrite, then Hendrycks ==.

    Quirk kept: the seed's pattern needs the answer on the line *after* the marker and a newline
    after it, so "[[Final Answer]]: 5" on one line falls back to the last line, which is then
    the whole "[[FinalAnswer]]:5" and never matches. Gold goes through the same extraction.
    """
    extracted = _lbt_answer(output)
    if extracted is None:
        return NOTHING
    expected = _lbt_answer(gold)
    return Score(extracted or None, expected is not None and _lbt_equivalent(extracted, expected))


def _lbt_answer(text: str) -> str | None:
    found = _LBT_SEED_MARKER.findall(text)
    answer = found[0] if found else text.strip().split("\n")[-1]
    if not answer.strip() or len(answer) > MAX_LBT_ANSWER:
        return None
    return minerva_normalise(answer)


def _lbt_equivalent(answer: str, gold: str) -> bool:
    try:
        return hendrycks_strip(answer, slash_needs_ints=True) == hendrycks_strip(gold, slash_needs_ints=True)
    except NotNormalisable:
        return answer == gold  # the seed compares the raw strings when normalising fails
