"""LbT teaching rationales: a worked solution ending in the ``[[Final Answer]]:`` block, and its parser."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.benchmarks.records import ProblemRecord
from pipeline.prompts import render_question
from pipeline.teaching.parsing import reply_text
from pipeline.teaching.templates import PromptTemplate, render, template_for

# The marker line, markdown bold allowed; group 1 is anything after it on the same line.
_MARKER = re.compile(r"^[ \t*#]*\[\[[ \t]*final[ \t]+answer[ \t]*\]\][ \t*]*:?(.*)$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class LbtRationale:
    """A parsed teaching rationale (TR) and its answer (TA)."""

    ok: bool
    error: str
    raw: str
    rationale: str = ""
    answer: str = ""


def lbt_rationale_messages(problem: ProblemRecord, template: PromptTemplate | None = None) -> list[dict]:
    """Ask a teacher for one rationale/answer pair; sample it n times for LbT's n pairs per problem."""
    chosen = template_for(template, "lbt_rationale", ("lbt_rationale",))
    return render(chosen, question=render_question(problem))


def parse_lbt_rationale(text: object) -> LbtRationale:
    """The text before the last ``[[Final Answer]]:`` marker and the answer: the rest of that line, else the next
    non-empty line (LbT's layout puts it on the line below)."""
    raw = reply_text(text)
    if not raw.strip():
        return LbtRationale(False, "empty reply", raw)
    last = None
    for last in _MARKER.finditer(raw):
        pass
    if last is None:
        return LbtRationale(False, "no '[[Final Answer]]:' marker", raw, raw.strip())
    rationale = raw[:last.start()].strip()
    answer = _answer_after(last.group(1), raw[last.end():])
    if not answer:
        return LbtRationale(False, "nothing after the '[[Final Answer]]:' marker", raw, rationale)
    if not rationale:
        return LbtRationale(False, "no rationale before the '[[Final Answer]]:' marker", raw, "", answer)
    return LbtRationale(True, "", raw, rationale, answer)


def _answer_after(same_line: str, rest: str) -> str:
    answer = same_line.strip(" \t*")
    if answer:
        return answer
    for line in rest.splitlines():
        if line.strip(" \t*"):
            return line.strip(" \t*")
    return ""
