"""Chat prompts for the student: zero-shot, chain-of-thought and few-shot, in the wording of a named preset."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from string import ascii_uppercase
from typing import Any

from pipeline.benchmarks.records import ProblemRecord

STYLES = ("zero_shot", "cot", "few_shot")
MAX_SHOTS = 16


class PromptError(ValueError):
    """A prompt setting that cannot be used; the message names the setting and what is allowed."""


@dataclass(frozen=True)
class Preset:
    """The wording of one prompt family and the answer format it asks for.

    ``final`` is the final-answer line with ``{answer}`` where the answer goes; ``reasoning`` (cot and
    few-shot) and ``direct`` (zero-shot) are instructions with ``{final}`` where an example final line
    goes. ``answer_first`` puts the answer before the explanation (SALAM's scorer reads the first "(x)").
    ``scorers`` maps an answer format ("number", "multiple_choice", ...) to the scorer suited to the
    replies; formats it does not list use Errata's defaults (see `suggested_scorer`).
    """

    description: str
    system: str
    reasoning: str
    direct: str
    final: str = "The answer is {answer}."
    answer_first: bool = False
    choices_only: bool = False
    scorers: Mapping[str, str] = field(default_factory=dict)

    @property
    def trigger(self) -> str:
        """The fixed words before the answer ("The answer is"); empty when the answer stands alone."""
        return self.final.split("{answer}")[0].strip()

    def final_answer(self, answer: str) -> str:
        return self.final.format(answer=answer)


DEFAULT_SCORERS_BY_FORMAT = {
    "number": "numeric", "multiple_choice": "choice", "boolean": "boolean", "math": "math", "text": "text",
}

PRESETS: dict[str, Preset] = {
    "errata": Preset(
        description="Errata's default: think step by step, then one closing sentence 'The answer is X.'. "
        "Errata's default scorers (numeric, choice, boolean, math, text) all read that sentence.",
        system="You are a careful problem solver. Work things out before you commit to an answer.",
        reasoning="Solve this step by step. When you are done, state the result on its own line as: {final}",
        direct="Do not show any working. Reply with a single line of the form: {final}",
    ),
    "salam": Preset(
        description="SALAM's BBH/BBQ student (multiple choice only): the chosen option's letter in brackets "
        "comes first, a short reason may follow. Suits salam_mc (the first '(x)' in the reply) and choice.",
        system="You answer multiple-choice questions by picking exactly one of the options.",
        reasoning="Pick one option. Open your reply with its letter in brackets, as in {final}, "
        "then give a brief reason on the next line.",
        direct="Pick one option and reply with nothing but its letter in brackets, as in {final}, "
        "where X is the letter.",
        final="{answer}",
        answer_first=True,
        choices_only=True,
        scorers={"multiple_choice": "salam_mc"},
    ),
    "lema": Preset(
        description="LEMA's GSM8K/MATH chain of thought: reasoning in short steps, closing with "
        "'The answer is X' and nothing after it. Suits lema_gsm8k (GSM8K), math_boxed (MATH), aqua_letter.",
        system="",
        reasoning="Reason through the problem one small step at a time. Close with the sentence "
        "\"{final}\", where X is only the final result.",
        direct="Give only the final result, as the sentence \"{final}\".",
        final="The answer is {answer}",
        scorers={"number": "lema_gsm8k", "math": "math_boxed", "multiple_choice": "aqua_letter"},
    ),
    "gsi": Preset(
        description="GSI's sampling prompts: few-shot chain of thought whose worked solutions end with a line "
        "'The answer is N', like GSI's answer_cot pools. Suits gsi_numeric, aqua_letter (AQuA) and math.",
        system="You solve math word problems, showing your working.",
        reasoning="Write the solution one line per step, then finish with the line \"{final}\".",
        direct="Give the final value only, as the line \"{final}\".",
        final="The answer is {answer}",
        scorers={"number": "gsi_numeric", "multiple_choice": "aqua_letter", "math": "math"},
    ),
    "fair": Preset(
        description="FAIR's student pass: the reasoning first, then a last line 'Answer: X'. Suits fair_numeric "
        "(first number after a line starting 'Answer') and strategyqa_bool; a reply that opens with "
        "'Answer:' defeats FAIR's scorer, which is why the reasoning comes first here.",
        system="You are a student answering exam questions. Explain your thinking, then commit to one answer.",
        reasoning="Explain your reasoning first. Then, as the last line and on a line of its own, "
        "write \"{final}\" with only the final answer after the colon.",
        direct="Write only the line \"{final}\" with the final answer after the colon.",
        final="Answer: {answer}",
        scorers={"number": "fair_numeric", "boolean": "strategyqa_bool"},
    ),
    "lbt": Preset(
        description="LbT's MATH exams: a worked solution closing with the line '[[Final Answer]]:' and the "
        "result alone on the line below it. Suits lbt_math (which reads exactly that layout, else the last "
        "line) and math.",
        system="You are a student solving competition mathematics problems.",
        reasoning="Work through the solution in full. End with the marker line and the result alone on the "
        "line below it, exactly like this:\n{final}",
        direct="Reply with only the marker line and the result alone on the line below it, exactly like "
        "this:\n{final}",
        final="[[Final Answer]]:\n{answer}",
        scorers={"math": "lbt_math", "number": "numeric"},
    ),
}

PRESET_SCORERS: dict[str, dict[str, str]] = {
    name: {**DEFAULT_SCORERS_BY_FORMAT, **preset.scorers} for name, preset in PRESETS.items()
}


def suggested_scorer(preset: str, answer_format: str) -> str:
    """The scorer suited to replies in ``preset``'s format for a dataset of ``answer_format``."""
    _preset(preset)
    by_format = PRESET_SCORERS[preset]
    if answer_format not in by_format:
        known = ", ".join(DEFAULT_SCORERS_BY_FORMAT)
        raise PromptError(f"unknown answer format {answer_format!r}; known: {known}")
    return by_format[answer_format]


@dataclass(frozen=True)
class PromptConfig:
    style: str = "cot"
    preset: str = "errata"
    k_shots: int = 0
    shot_seed: int = 0
    system: str = ""  # replaces the preset's system message when set

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromptConfig:
        """A config from run-config JSON; unknown keys are a PromptError, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PromptError(f"unknown prompt setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**data)


def validate_prompt_config(cfg: PromptConfig, *, train_pool_size: int) -> None:
    """Raise PromptError naming the first setting that cannot work with a train pool of that size."""
    if cfg.style not in STYLES:
        raise PromptError(f"unknown prompt style {cfg.style!r}; known styles: {', '.join(STYLES)}")
    _preset(cfg.preset)
    if not isinstance(cfg.system, str):
        raise PromptError("system must be text")
    _check_whole(cfg.shot_seed, "shot_seed", 0, 2**63 - 1)
    _check_whole(cfg.k_shots, "k_shots", 0, MAX_SHOTS)
    if cfg.style == "few_shot" and cfg.k_shots == 0:
        raise PromptError("few_shot needs k_shots of at least 1 (how many worked examples to show)")
    if cfg.style != "few_shot" and cfg.k_shots:
        raise PromptError(f"k_shots is only used by the few_shot style, not {cfg.style!r}; set it to 0")
    if cfg.k_shots > train_pool_size:
        raise PromptError(f"k_shots is {cfg.k_shots} but the train split has only {train_pool_size} "
                          "problem(s) to draw examples from")


def _check_whole(value: Any, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PromptError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise PromptError(f"{name} must be between {low} and {high}, got {value}")


def _preset(name: str) -> Preset:
    preset = PRESETS.get(name)
    if preset is None:
        raise PromptError(f"unknown prompt preset {name!r}; known presets: {', '.join(PRESETS)}")
    return preset


def choose_shots(problem: ProblemRecord, pool: Sequence[ProblemRecord], cfg: PromptConfig) -> list[ProblemRecord]:
    """The ``cfg.k_shots`` worked examples for ``problem``: the same for the same (shot_seed, problem id).

    Never the problem itself (by id or by identical question). Candidates need a gold answer or
    rationale; those with a rationale are preferred, so chain-of-thought examples show reasoning.
    Each candidate is ranked by a hash of (seed, problem id, candidate id), so the choice does not
    depend on the pool's order. Raises PromptError when fewer than k candidates are left.
    """
    if cfg.style != "few_shot" or cfg.k_shots == 0:
        return []
    candidates = [shot for shot in pool if _usable_shot(shot, problem)]
    if len(candidates) < cfg.k_shots:
        raise PromptError(f"few_shot needs {cfg.k_shots} worked example(s) for problem {problem.external_id!r} "
                          f"but the train pool has only {len(candidates)} other problem(s) with a gold answer")

    def rank(shot: ProblemRecord) -> tuple[bool, bytes]:
        key = f"{cfg.shot_seed}\x00{problem.external_id}\x00{shot.external_id}".encode()
        return (not shot.gold_rationale.strip(), hashlib.sha256(key).digest())

    return sorted(candidates, key=rank)[:cfg.k_shots]


def _usable_shot(shot: ProblemRecord, problem: ProblemRecord) -> bool:
    if shot.external_id == problem.external_id or shot.question.strip() == problem.question.strip():
        return False
    return bool(shot.gold_answer.strip() or shot.gold_rationale.strip())


def render_question(problem: ProblemRecord) -> str:
    """The question, followed by its options lettered "(A) ..." one per line when it has any."""
    if not problem.choices:
        return problem.question.strip()
    options = "\n".join(f"({letter}) {text}" for letter, text in zip(ascii_uppercase, problem.choices))
    return f"{problem.question.strip()}\nOptions:\n{options}"


def _gold_index(problem: ProblemRecord) -> int | None:
    gold = problem.gold_answer.strip().upper()
    if problem.choices and len(gold) == 1 and gold in ascii_uppercase[:len(problem.choices)]:
        return ascii_uppercase.index(gold)
    return None


def answer_text(problem: ProblemRecord) -> str:
    """The gold answer as a reply should write it: "(B)" for a multiple-choice letter, else as stored."""
    index = _gold_index(problem)
    return problem.gold_answer.strip() if index is None else f"({ascii_uppercase[index]})"


def gold_with_option(problem: ProblemRecord) -> str:
    """The gold answer for a reader: "(B) two" for multiple choice (letter and option text), else as stored."""
    index = _gold_index(problem)
    return answer_text(problem) if index is None else f"{answer_text(problem)} {problem.choices[index]}"


def final_line_example(problem: ProblemRecord, preset_name: str) -> str:
    """The preset's final line with a placeholder answer: "The answer is X.", "(X)" for multiple choice."""
    return _preset(preset_name).final_answer("(X)" if problem.choices else "X")


def instruction(problem: ProblemRecord, preset_name: str, style: str) -> str:
    """What the student is asked to do under the question, with the preset's final-line format."""
    preset = _preset(preset_name)
    template = preset.direct if style == "zero_shot" else preset.reasoning
    text = template.format(final=final_line_example(problem, preset_name))
    if problem.choices and not preset.answer_first:
        text += " Here X is the letter of the option you choose."
    return text


def user_turn(problem: ProblemRecord, preset_name: str, style: str) -> str:
    return f"{render_question(problem)}\n\n{instruction(problem, preset_name, style)}"


_FINAL_LINE = re.compile(
    r"^\s*(?:so,?\s+|therefore,?\s+|thus,?\s+)?"
    r"(?:the\s+(?:final\s+)?answer\s+is\b|answer\s*:|\[\[final answer\]\]|####)",
    re.IGNORECASE,
)

_LBT_MARKER_LINE = re.compile(r"^\s*\[\[final answer\]\]\s*:?\s*$", re.IGNORECASE)


def rationale_body(rationale: str) -> str:
    """A gold rationale without its closing answer line: "The answer is 220", "#### 220", "[[Final Answer]]:\\n5"."""
    lines = rationale.strip().splitlines()
    if len(lines) >= 2 and _LBT_MARKER_LINE.match(lines[-2]):  # LbT puts the answer below its marker
        lines = lines[:-2]
    elif lines and _FINAL_LINE.match(lines[-1]):
        lines = lines[:-1]
    return "\n".join(lines).strip()


def worked_answer(shot: ProblemRecord, preset_name: str) -> str:
    """A few-shot example's reply: its rationale and its gold answer in the preset's final-line format."""
    preset = _preset(preset_name)
    final = preset.final_answer(answer_text(shot))
    body = rationale_body(shot.gold_rationale)
    if not body:
        return final
    return f"{final}\n{body}" if preset.answer_first else f"{body}\n{final}"


def student_messages(
    problem: ProblemRecord, cfg: PromptConfig, shots: Sequence[ProblemRecord] = ()
) -> list[dict]:
    """Chat messages for one student attempt: optional system, worked examples as user/assistant turns, the question."""
    preset = _preset(cfg.preset)
    if cfg.style not in STYLES:
        raise PromptError(f"unknown prompt style {cfg.style!r}; known styles: {', '.join(STYLES)}")
    if preset.choices_only and not problem.choices:
        raise PromptError(f"preset {cfg.preset!r} is for multiple-choice questions; "
                          f"problem {problem.external_id!r} has no options")
    if cfg.style == "few_shot" and not shots:
        raise PromptError("the few_shot style needs worked examples: pass choose_shots(problem, train_pool, cfg)")
    if cfg.style != "few_shot" and shots:
        raise PromptError(f"worked examples were given but the style is {cfg.style!r}; use few_shot")
    messages = []
    system = cfg.system or preset.system
    if system:
        messages.append({"role": "system", "content": system})
    for shot in shots:
        messages.append({"role": "user", "content": user_turn(shot, cfg.preset, cfg.style)})
        messages.append({"role": "assistant", "content": worked_answer(shot, cfg.preset)})
    messages.append({"role": "user", "content": user_turn(problem, cfg.preset, cfg.style)})
    return messages
