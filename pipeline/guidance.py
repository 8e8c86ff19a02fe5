"""GSI's guided resampling as pure logic: which problems need guidance, which kind each round, and its messages."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from pipeline.attempts import GUIDANCE_KINDS, AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.prompts import final_line_example, gold_with_option, rationale_body, render_question

KINDS = tuple(kind for kind in GUIDANCE_KINDS if kind)
STATE_RESET_FRACTIONS = (0.2, 0.4, 0.6, 0.8)
NEEDS_RATIONALE = ("rationale", "state_reset")  # kinds that cannot run on a problem without a gold rationale

# Chat-template settings that make a server continue the last (partial) assistant message instead of
# opening a new one: vLLM's chat API takes them in the request body (extra_body), transformers'
# apply_chat_template takes them as keyword arguments. Used for state reset.
CONTINUATION_PARAMS = {"continue_final_message": True, "add_generation_prompt": False}


class GuidanceError(ValueError):
    """A GSI setting or guidance request that cannot work; the message names the setting."""


@dataclass(frozen=True)
class GuidanceConfig:
    """GSI options: after the plain pass, up to ``max_resample`` guided rounds for problems short of right answers."""

    min_correct: int = 0  # 0 turns GSI off
    max_resample: int = 0
    kinds: tuple[str, ...] = ()  # rounds cycle through these in order
    state_reset_lines: int = 0  # state reset from the first k lines of the gold rationale...
    state_reset_fraction: float = 0.0  # ...or from this share of its whitespace-separated tokens
    samples_per_round: int = 1

    @property
    def enabled(self) -> bool:
        return self.min_correct > 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuidanceConfig:
        """A config from run-config JSON (kinds may be a list); unknown keys are a GuidanceError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GuidanceError(f"unknown GSI setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        values = dict(data)
        if isinstance(values.get("kinds"), list):
            values["kinds"] = tuple(values["kinds"])
        return cls(**values)


def validate_guidance(cfg: GuidanceConfig, *, samples_per_problem: int, has_teacher: bool = False) -> None:
    """Raise GuidanceError naming the first GSI setting that cannot work as given."""
    for name in ("min_correct", "max_resample", "state_reset_lines"):
        _check_whole(getattr(cfg, name), name, 0)
    _check_whole(cfg.samples_per_round, "samples_per_round", 1)
    if cfg.min_correct > samples_per_problem:
        raise GuidanceError(f"min_correct ({cfg.min_correct}) cannot exceed the samples per problem "
                            f"({samples_per_problem})")
    if not cfg.enabled:
        if cfg.max_resample or cfg.kinds or cfg.state_reset_lines or cfg.state_reset_fraction:
            raise GuidanceError("guided rounds run only for problems with fewer than min_correct right answers: "
                                "set min_correct to at least 1, or clear max_resample and the guidance kinds")
        return
    if cfg.max_resample == 0:
        raise GuidanceError("min_correct needs max_resample of at least 1 (how many guided rounds to allow)")
    _check_kinds(cfg, has_teacher=has_teacher)


def _check_whole(value: Any, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GuidanceError(f"{name} must be a whole number, got {value!r}")
    if value < low:
        raise GuidanceError(f"{name} must be at least {low}, got {value}")


def _check_kinds(cfg: GuidanceConfig, *, has_teacher: bool) -> None:
    if not isinstance(cfg.kinds, tuple) or not cfg.kinds:
        raise GuidanceError(f"max_resample needs at least one guidance kind; choose from {', '.join(KINDS)}")
    for kind in cfg.kinds:
        if kind not in KINDS:
            raise GuidanceError(f"unknown guidance kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if len(set(cfg.kinds)) != len(cfg.kinds):
        raise GuidanceError("each guidance kind may be listed once (rounds already cycle through the list)")
    if "teacher_help" in cfg.kinds and not has_teacher:
        raise GuidanceError("teacher_help needs a teacher endpoint to write the corrections")
    _check_state_reset(cfg)


def _check_state_reset(cfg: GuidanceConfig) -> None:
    lines, fraction = cfg.state_reset_lines, cfg.state_reset_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise GuidanceError(f"state_reset_fraction must be a number, got {fraction!r}")
    if "state_reset" not in cfg.kinds:
        if lines or fraction:
            raise GuidanceError("state_reset_lines and state_reset_fraction are only used by the state_reset kind")
        return
    if bool(lines) == bool(fraction):
        raise GuidanceError("state_reset needs exactly one of state_reset_lines (first k lines of the gold "
                            "rationale) or state_reset_fraction (a share of its tokens)")
    if fraction and not any(math.isclose(fraction, allowed) for allowed in STATE_RESET_FRACTIONS):
        raise GuidanceError(f"state_reset_fraction must be one of {', '.join(map(str, STATE_RESET_FRACTIONS))}, "
                            f"got {fraction}")


def correct_counts(attempts: Sequence[AttemptRecord]) -> dict[str, int]:
    """Right answers per problem id over every round, in the order the problems first appear."""
    counts: dict[str, int] = {}
    for attempt in attempts:
        counts[attempt.problem_external_id] = counts.get(attempt.problem_external_id, 0) + attempt.correct
    return counts


def problems_needing_guidance(attempts: Sequence[AttemptRecord], cfg: GuidanceConfig) -> list[str]:
    """Ids of the attempted problems with fewer than ``min_correct`` right answers so far (all rounds counted)."""
    if not cfg.enabled:
        return []
    return [problem for problem, right in correct_counts(attempts).items() if right < cfg.min_correct]


def guidance_kind_for_round(cfg: GuidanceConfig, round: int) -> str:
    """The guidance kind of a round: "" for the plain pass (round 0), then the kinds in turn, cycling."""
    if round == 0:
        return ""
    if round < 0 or not cfg.kinds:
        raise GuidanceError(f"no guidance kind for round {round}: rounds start at 1 and need kinds")
    return cfg.kinds[(round - 1) % len(cfg.kinds)]


def should_stop(attempts: Sequence[AttemptRecord], problem_id: str, cfg: GuidanceConfig, round: int) -> bool:
    """Whether ``problem_id`` gets no more guided rounds after ``round`` (the last round that has run)."""
    right = sum(a.correct for a in attempts if a.problem_external_id == problem_id)
    return right >= cfg.min_correct or round >= cfg.max_resample


def latest_wrong(attempts: Sequence[AttemptRecord], problem_id: str) -> AttemptRecord | None:
    """The problem's most recent wrong attempt (latest round, then highest sample): what teacher help corrects."""
    wrong = [a for a in attempts if a.problem_external_id == problem_id and not a.correct]
    return max(wrong, key=lambda a: (a.round, a.sample_index)) if wrong else None


_TOKEN = re.compile(r"\S+")


def rationale_prefix(rationale: str, *, lines: int = 0, fraction: float = 0.0) -> str:
    """The start of a rationale for state reset: its first ``lines`` lines, or its first ``fraction`` of tokens.

    Tokens are whitespace-separated words (no model tokenizer is needed, and the share is the same
    for every student); the count is rounded down and the text is cut where that token ends, so
    line breaks are kept. Never the whole rationale: at most all lines but the last, so the
    student always writes the rest itself.
    """
    if bool(lines) == bool(fraction):
        raise GuidanceError("rationale_prefix takes exactly one of lines or fraction")
    if lines:
        kept = rationale.splitlines()
        return "\n".join(kept[:min(lines, len(kept) - 1)])
    if not 0.0 < fraction < 1.0:
        raise GuidanceError(f"fraction must be between 0 and 1, got {fraction}")
    tokens = list(_TOKEN.finditer(rationale))
    count = math.floor(len(tokens) * fraction + 1e-9)  # 0.29 * 100 is 28.999999999999996
    return rationale[:tokens[count - 1].end()] if count else ""


def guided_messages(
    problem: ProblemRecord,
    base_messages: list[dict],
    kind: str,
    cfg: GuidanceConfig,
    *,
    previous_wrong: AttemptRecord | None = None,
    teacher_correction: str | None = None,
    preset: str = "errata",
) -> list[dict]:
    """The student's messages for one guided attempt: ``base_messages`` (ending with the question) plus the guidance.

    - answer: the question gains a hint with the gold answer; the student writes reasoning that reaches it.
    - rationale: the question gains the gold rationale as a reference; the student solves it in its own words.
    - state_reset: an assistant message holding a prefix of the gold rationale is appended. Send it with
      CONTINUATION_PARAMS so the model continues that message, and score `continued_output(messages,
      generated)`, the prefix plus what was generated. A rationale too short to give a prefix leaves
      the messages as they are (a plain attempt, still recorded as a state-reset round).
    - teacher_help: the previous wrong reply (assistant) and the teacher's correction (user) are appended,
      with a request to revise.
    """
    if not base_messages or base_messages[-1].get("role") != "user":
        raise GuidanceError("base_messages must end with the user's question")
    messages = [dict(message) for message in base_messages]
    if kind == "answer":
        return _with_hint(messages, _answer_hint(problem, preset))
    if kind == "rationale":
        return _with_hint(messages, _rationale_hint(problem, preset))
    if kind == "state_reset":
        prefix = _state_reset_prefix(problem, cfg)
        return messages + [{"role": "assistant", "content": prefix}] if prefix else messages
    if kind == "teacher_help":
        return messages + _revision_turns(problem, previous_wrong, teacher_correction, preset)
    raise GuidanceError(f"unknown guidance kind {kind!r}; known kinds: {', '.join(KINDS)}")


def _with_hint(messages: list[dict], hint: str) -> list[dict]:
    messages[-1]["content"] = f"{messages[-1]['content']}\n\n{hint}"
    return messages


def _format_reminder(problem: ProblemRecord, preset: str) -> str:
    return f"Give your final answer in the form asked for: {final_line_example(problem, preset)}"


def _answer_hint(problem: ProblemRecord, preset: str) -> str:
    return (f"Hint: the correct final answer is {gold_with_option(problem)}. Work out, step by step, the "
            f"reasoning that leads to it; do not just restate it. {_format_reminder(problem, preset)}")


def _rationale_hint(problem: ProblemRecord, preset: str) -> str:
    if not problem.gold_rationale.strip():
        raise GuidanceError("rationale-driven guidance needs a gold rationale; "
                            f"problem {problem.external_id!r} has none")
    return (f"Here is a reference solution you may consult:\n---\n{problem.gold_rationale.strip()}\n---\n"
            "Understand it, then write your own solution step by step in your own words. "
            f"{_format_reminder(problem, preset)}")


def _state_reset_prefix(problem: ProblemRecord, cfg: GuidanceConfig) -> str:
    # The closing "The answer is N" line is dropped first, so that no prefix hands over the answer.
    body = rationale_body(problem.gold_rationale)
    if not body:
        raise GuidanceError(f"state reset needs a gold rationale; problem {problem.external_id!r} has none")
    return rationale_prefix(body, lines=cfg.state_reset_lines, fraction=cfg.state_reset_fraction)


def _revision_turns(
    problem: ProblemRecord, wrong: AttemptRecord | None, correction: str | None, preset: str
) -> list[dict]:
    if wrong is None or not (correction or "").strip():
        raise GuidanceError(f"teacher help for problem {problem.external_id!r} needs the previous wrong attempt "
                            "and the teacher's correction")
    request = (f"A teacher reviewed your solution and wrote:\n---\n{correction.strip()}\n---\n"
               "Use this feedback to write a corrected solution, step by step. "
               f"{_format_reminder(problem, preset)}")
    return [{"role": "assistant", "content": wrong.output}, {"role": "user", "content": request}]


def is_continuation(messages: Sequence[dict]) -> bool:
    """Whether the messages end with a partial assistant reply to continue (state reset)."""
    return bool(messages) and messages[-1].get("role") == "assistant"


def continued_output(messages: Sequence[dict], generated: str) -> str:
    """The whole reply of a continued attempt: the partial assistant message, then what the model added."""
    if not is_continuation(messages):
        return generated
    return messages[-1]["content"] + generated


TEACHER_SYSTEM = ("You are a patient teacher. You help a student find and fix the mistake in their own "
                  "solution by explaining it, not by handing over the result.")


def teacher_help_messages(problem: ProblemRecord, wrong: AttemptRecord) -> list[dict]:
    """What the teacher is asked for a correction of ``wrong``: the gold answer is a reference, not the reply.

    As in GSI's interactive sampling, the teacher sees the reference answer (and rationale when there
    is one) so its feedback is right, and is told to explain the error rather than state the answer.
    """
    reference = f"Reference answer (for you, the teacher): {gold_with_option(problem)}"
    if problem.gold_rationale.strip():
        reference += f"\nReference solution:\n{problem.gold_rationale.strip()}"
    request = (
        f"Problem:\n{render_question(problem)}\n\n{reference}\n\n"
        f"The student's solution, which reaches a wrong answer:\n---\n{wrong.output.strip()}\n---\n\n"
        "Point out the first step where the student goes wrong, explain why it is wrong, and say how to "
        "approach that step correctly. Do not simply state the correct final answer and do not write out "
        "the full solution: the student should reach the answer from your explanation."
    )
    return [{"role": "system", "content": TEACHER_SYSTEM}, {"role": "user", "content": request}]
