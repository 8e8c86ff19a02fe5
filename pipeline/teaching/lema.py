"""LEMA corrections: the first wrong step, why it is wrong, and a corrected solution; kept only when it reaches gold.

LEMA's released correction prompt shows the teacher the question and the wrong solution only; its
paper keeps a correction only when the corrected final answer equals gold. Errata offers both the
plain prompt (the default) and a hinted one that tells the teacher the gold answer (``hint_answer``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.scoring import score
from pipeline.teaching.parsing import last_answer_sentence, reply_text
from pipeline.teaching.templates import (
    PromptTemplate, TemplateError, render, student_values, template_for, used_placeholders,
)

# Section headings at the start of a line, markdown decoration allowed ("**Incorrect Step:**", "## Explanation").
_HEADING = re.compile(
    r"^[ \t>*_#-]*(incorrect[ \t]+step|explanation|correct(?:ed)?[ \t]+solution)[ \t*_]*:",
    re.IGNORECASE | re.MULTILINE,
)
_SECTIONS = {"incorrect": "Incorrect Step", "explanation": "Explanation", "correct": "Correct Solution"}
_NUMBERED = re.compile(r"^\s*step\s*\d+\s*[:.)]", re.IGNORECASE)


@dataclass(frozen=True)
class LemaCorrection:
    """A parsed LEMA correction; on a parse failure the fields hold whatever sections were found."""

    ok: bool
    error: str
    raw: str
    incorrect_step: str = ""
    explanation: str = ""
    corrected_solution: str = ""
    corrected_answer: str | None = None


def numbered_steps(solution: str) -> str:
    """The solution one step per line as "Step n: ...", as LEMA's prompts show it; kept as is if already numbered."""
    lines = [line.strip() for line in solution.splitlines() if line.strip()]
    if any(_NUMBERED.match(line) for line in lines):
        return "\n".join(lines)
    return "\n".join(f"Step {number}: {line}" for number, line in enumerate(lines, 1)) or "(no answer)"


def lema_correction_messages(
    problem: ProblemRecord,
    wrong: AttemptRecord,
    template: PromptTemplate | None = None,
    *,
    hint_answer: str | None = None,
) -> list[dict]:
    """The messages asking a teacher to correct ``wrong``; with ``hint_answer`` the teacher is told the gold answer."""
    default = "lema_correction_hinted" if hint_answer else "lema_correction"
    chosen = template_for(template, default, ("lema_correction", "lema_correction_hinted"))
    values = {**student_values(problem, wrong), "student_steps": numbered_steps(wrong.output)}
    if hint_answer:
        if "gold_answer" not in used_placeholders(chosen):
            raise TemplateError(f"a hint answer was given but template {chosen.name!r} has no {{gold_answer}}")
        values["gold_answer"] = hint_answer.strip()
    return render(chosen, **values)


def parse_lema_correction(text: object) -> LemaCorrection:
    """The three sections of a correction and the answer of its last "The answer is X"; failures are data."""
    raw = reply_text(text)
    if not raw.strip():
        return LemaCorrection(False, "empty reply", raw)
    sections = _sections(raw)
    solution = _unwrap_braces(sections.get("correct", ""))
    found = LemaCorrection(True, "", raw, sections.get("incorrect", ""), sections.get("explanation", ""),
                           solution, last_answer_sentence(solution))
    error = _first_problem(sections, found)
    return found if not error else LemaCorrection(False, error, raw, found.incorrect_step, found.explanation,
                                                  found.corrected_solution, found.corrected_answer)


def _sections(text: str) -> dict[str, str]:
    """Each heading's text up to the next heading; a heading that appears again later stays inside the text."""
    starts: dict[str, tuple[int, int]] = {}
    for heading in _HEADING.finditer(text):
        key = heading.group(1).split()[0].lower().replace("corrected", "correct")
        starts.setdefault(key, (heading.start(), heading.end()))
    ordered = sorted(starts.items(), key=lambda item: item[1][0])
    sections = {}
    for index, (key, (_start, end)) in enumerate(ordered):
        stop = ordered[index + 1][1][0] if index + 1 < len(ordered) else len(text)
        sections[key] = text[end:stop].strip().lstrip("*_").strip()
    return sections


def _unwrap_braces(solution: str) -> str:
    # LEMA's examples put solutions in "{ ... }"; a teacher imitating them should not fail for it.
    if solution.startswith("{") and solution.endswith("}"):
        return solution[1:-1].strip()
    return solution


def _first_problem(sections: dict[str, str], found: LemaCorrection) -> str:
    for key, label in _SECTIONS.items():
        if key not in sections:
            return f"missing '{label}:' section"
        if not sections[key]:
            return f"'{label}:' is empty"
    if found.corrected_answer is None:
        return "the corrected solution has no final 'The answer is ...'"
    return ""


# Scorers that read a bare last line rather than "The answer is X" (LbT's falls back to the last line).
_BARE_ANSWER_SCORERS = frozenset({"lbt_math"})


def lema_auto_check(correction: LemaCorrection, gold: str, choices: Sequence[str], scorer: str) -> bool:
    """Whether the corrected answer equals gold by the dataset's scorer; a correction that did not parse fails.

    Only the final answer is scored, as the sentence "The answer is X" (X alone for LbT's rule), so
    a scorer that reads the first option or number of a text (SALAM's, FAIR's) cannot pick up a
    value from a middle step.
    """
    if not correction.ok or correction.corrected_answer is None:
        return False
    answer = correction.corrected_answer
    text = answer if scorer in _BARE_ANSWER_SCORERS else f"The answer is {answer}"
    return score(scorer, text, gold, choices).correct
