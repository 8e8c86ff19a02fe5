"""The Score record, the scorer contract (never raise) and text helpers every scoring rule shares."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.latex import last_boxed


@dataclass(frozen=True)
class Score:
    """What a scoring rule pulled out of a model output, and whether it matches the gold answer."""

    extracted: str | None  # None when the rule found nothing to compare
    correct: bool


class UnknownScorer(ValueError):
    """A scorer name or benchmark kind that the scoring registry does not know."""


NOTHING = Score(None, False)

Scorer = Callable[[str, str, Sequence[str]], Score]

# Long enough for any real generation; stops a pathological input from making a rule slow.
MAX_TEXT = 200_000


def scorer(rule: Callable[[str, str, tuple[str, ...]], Score]) -> Scorer:
    """Wrap a rule so that any input (None, numbers, huge or broken text) gives a Score and never an exception."""

    @functools.wraps(rule)
    def safe(output: object, gold: object, choices: object = ()) -> Score:
        try:
            return rule(as_text(output)[:MAX_TEXT], as_text(gold)[:MAX_TEXT], as_choices(choices))
        except Exception:  # noqa: BLE001 - a batch over thousands of outputs must not stop at one odd string
            return NOTHING

    return safe


def as_text(value: object) -> str:
    """Text of a value: None is empty, bytes are decoded leniently, anything else goes through str()."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def as_choices(choices: object) -> tuple[str, ...]:
    """Option texts as a tuple of strings; a lone string is one option, not a sequence of characters."""
    if choices is None:
        return ()
    if isinstance(choices, (str, bytes)):
        return (as_text(choices),)
    try:
        return tuple(as_text(choice) for choice in choices)  # type: ignore[union-attr]
    except TypeError:
        return ()


# Final-answer markers, most specific first; "answer is" also covers "The final answer is"
# and "the answer to the question is".
_MARKER = re.compile(
    r"\[\[final answer\]\]\s*:|answer(?:\s+to\s+(?:the|this)\s+question)?\s+is\s*:?|\banswer\s*:|####"
    r"|final answer\s*:",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Marked:
    """The text a final-answer marker points at, and whether it came from a \\boxed{}."""

    text: str
    boxed: bool


def marked_answer(text: str) -> Marked | None:
    """The answer after the last explicit final-answer marker or \\boxed{}, whichever comes last in `text`."""
    marker_end, marker_start = _last_marker(text)
    boxed_at = text.rfind("\\boxed")
    if boxed_at > marker_start:
        content = last_boxed(text)
        if content is not None:
            return Marked(content.strip(), boxed=True)
    if marker_end < 0:
        return None
    return Marked(first_line(text[marker_end:]), boxed=False)


def _last_marker(text: str) -> tuple[int, int]:
    last = None
    for last in _MARKER.finditer(text):
        pass
    return (last.end(), last.start()) if last else (-1, -1)


def first_line(text: str) -> str:
    """The first line with something on it (a marker is often followed by a blank line)."""
    for line in text.splitlines():
        if line.strip(" \t*:#"):
            return line.strip()
    return ""
