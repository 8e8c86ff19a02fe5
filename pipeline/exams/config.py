"""An exam run's configuration: student, datasets, mode (plain, SALAM, LbT M1) and its options, strictly checked.

Every error names the setting (nested ones as ``salam.top_k``), as the gather and teacher-run configs do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pipeline.decoding import DecodingError, validate_decoding
from pipeline.exams.retrieval import SALAM_THRESHOLD, SALAM_TOP_K
from pipeline.exams.selection import RELATED_RULES
from pipeline.gather import EXECUTIONS
from pipeline.prompts import MAX_SHOTS, PromptConfig, PromptError, validate_prompt_config
from pipeline.scoring import SCORERS

MODES = ("plain", "salam", "lbt")
RETRIEVE_FROM = ("mistakes", "correct", "both", "none")
SPLITS = ("test", "train", "all")
MAX_TOP_K = 20  # SALAM keeps the 20 nearest cases before its threshold and top-k
MAX_ID = 2**62


class ExamConfigError(ValueError):
    """An exam configuration that cannot run; the message names the setting."""


@dataclass(frozen=True)
class SalamOptions:
    """SALAM: the assistant's guideline and/or retrieved past cases in front of each question.

    Defaults are SALAM's (top_k 3, threshold 0.9, see `pipeline.exams.retrieval`). The seed's ablations:
    ``retrieve_from`` "mistakes" or "correct" with ``guideline`` off, and ``guideline`` on with "none".
    """

    assistant_endpoint_id: int | None = None
    guideline: bool = True
    retrieve_from: str = "mistakes"
    top_k: int = SALAM_TOP_K
    threshold: float = SALAM_THRESHOLD

    @property
    def variant(self) -> str:
        if self.retrieve_from == "none":
            return "guideline only"
        cases = f"retrieval from {self.retrieve_from}"
        return f"guideline and {cases}" if self.guideline else f"{cases} only"


@dataclass(frozen=True)
class LbtOptions:
    """LbT M1: each rationale of a teacher run is the example for ``exam_problems`` related problems, each
    answered ``repetitions`` times; its LbT score is the count of right answers. Defaults: LbT's MATH exam
    config (3 exam problems x 3 repetitions); the rule "similar" is its question-similarity exam maker."""

    teacher_run_id: int = 0
    related_rule: str = "similar"
    exam_problems: int = 3
    repetitions: int = 3
    group_key: str = ""  # same_group: the metadata key that groups problems (LbT's MATH(): "unique_id")


@dataclass(frozen=True)
class ExamConfig:
    student_endpoint_id: int
    dataset_ids: tuple[int, ...]
    mode: str = "plain"
    split: str = "test"
    tasks: tuple[str, ...] = ()
    sample_size: int = 0  # 0: every problem of the split
    sample_seed: int = 0
    samples_per_problem: int = 1
    majority_vote: bool = True  # several samples: the voted answer counts; else sample 0's
    prompt: PromptConfig = field(default_factory=PromptConfig)
    decoding: dict = field(default_factory=dict)
    scorer: str = ""  # "": each dataset's own scorer
    salam: SalamOptions | None = None
    lbt: LbtOptions | None = None
    exclude_contaminated: bool = False
    use_cache: bool = True
    execution: str = "http"

    def as_json(self) -> dict:
        data = asdict(self)
        data["dataset_ids"], data["tasks"] = list(self.dataset_ids), list(self.tasks)
        return data


def _whole(data: dict, name: str, default: int, low: int, high: int, prefix: str = "") -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ExamConfigError(f"{prefix}{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _flag(data: dict, name: str, default: bool, prefix: str = "") -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ExamConfigError(f"{prefix}{name} must be true or false, got {value!r}")
    return value


def _choice(data: dict, name: str, default: str, allowed: tuple[str, ...], prefix: str = "") -> str:
    value = data.get(name, default)
    if value not in allowed:
        raise ExamConfigError(f"{prefix}{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _object(data: Any, name: str, known: set[str]) -> dict:
    if not isinstance(data, dict):
        raise ExamConfigError(f"{name} must be a JSON object")
    unknown = sorted(set(data) - known)
    if unknown:
        raise ExamConfigError(f"unknown {name} setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return data


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def parse_exam_config(data: dict[str, Any]) -> ExamConfig:
    """A validated ExamConfig from plain JSON (a form, the API or a stored run)."""
    data = _object(data, "exam", _names(ExamConfig))
    mode = _choice(data, "mode", "plain", MODES)
    config = ExamConfig(
        student_endpoint_id=_whole(data, "student_endpoint_id", 0, 1, MAX_ID),
        dataset_ids=_dataset_ids(data.get("dataset_ids")), mode=mode,
        split=_choice(data, "split", "test", SPLITS), tasks=_tasks(data.get("tasks", [])),
        sample_size=_whole(data, "sample_size", 0, 0, 10_000_000), sample_seed=_whole(data, "sample_seed", 0, 0, MAX_ID),
        samples_per_problem=_whole(data, "samples_per_problem", 1, 1, 64),
        majority_vote=_flag(data, "majority_vote", True), prompt=_prompt(data.get("prompt", {}), mode),
        decoding=_decoding(data.get("decoding", {})), scorer=_scorer(data.get("scorer", "")),
        salam=_salam(data.get("salam"), mode), lbt=_lbt(data.get("lbt"), mode),
        exclude_contaminated=_flag(data, "exclude_contaminated", False), use_cache=_flag(data, "use_cache", True),
        execution=_choice(data, "execution", "http", EXECUTIONS),
    )
    if mode == "lbt" and config.samples_per_problem != 1:
        raise ExamConfigError("LbT samples each exam problem lbt.repetitions times; leave samples_per_problem at 1")
    return config


def _dataset_ids(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ExamConfigError("dataset_ids must be a non-empty list of dataset ids")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID for v in value):
        raise ExamConfigError(f"dataset_ids must hold positive whole numbers, got {value!r}")
    if len(set(value)) != len(value):
        raise ExamConfigError("dataset_ids lists a dataset twice")
    return tuple(value)


def _tasks(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(task, str) for task in value):
        raise ExamConfigError("tasks must be a list of task names")
    return tuple(value)


def _prompt(value: Any, mode: str) -> PromptConfig:
    try:
        prompt = PromptConfig.from_dict(_object(value, "prompt", _names(PromptConfig)))
        validate_prompt_config(prompt, train_pool_size=MAX_SHOTS)  # the pool itself is checked when the exam runs
    except (PromptError, TypeError) as error:
        raise ExamConfigError(f"prompt: {error}") from None
    if mode != "plain" and prompt.style == "few_shot":
        raise ExamConfigError(f"prompt.style: a {mode} exam puts its own material before the question; "
                              "use the cot or zero_shot style")
    return prompt


def _decoding(value: Any) -> dict:
    try:
        decoding = validate_decoding(value)
    except DecodingError as error:
        raise ExamConfigError(f"decoding: {error}") from None
    if "n" in decoding:
        raise ExamConfigError("decoding.n: set samples_per_problem rather than n")
    return decoding


def _scorer(value: Any) -> str:
    if value != "" and value not in SCORERS:
        raise ExamConfigError(f"scorer must be empty (each dataset's own) or one of {', '.join(sorted(SCORERS))}, "
                              f"got {value!r}")
    return value


def _mode_settings(value: Any, mode: str, name: str, cls: type) -> dict | None:
    """The settings object of mode ``name`` ({} when left out); None, and none allowed, in another mode."""
    if mode != name:
        if value is not None:
            raise ExamConfigError(f"{name} settings are only used when mode is {name}, not {mode}")
        return None
    return _object({} if value is None else value, name, _names(cls))


def _salam(value: Any, mode: str) -> SalamOptions | None:
    data, prefix = _mode_settings(value, mode, "salam", SalamOptions), "salam."
    if data is None:
        return None
    endpoint = data.get("assistant_endpoint_id")
    if endpoint is not None:
        endpoint = _whole(data, "assistant_endpoint_id", 0, 1, MAX_ID, prefix)
    options = SalamOptions(assistant_endpoint_id=endpoint, guideline=_flag(data, "guideline", True, prefix),
                           retrieve_from=_choice(data, "retrieve_from", "mistakes", RETRIEVE_FROM, prefix),
                           top_k=_whole(data, "top_k", SALAM_TOP_K, 1, MAX_TOP_K, prefix),
                           threshold=_threshold(data.get("threshold", SALAM_THRESHOLD)))
    if options.guideline and endpoint is None:
        raise ExamConfigError("salam.assistant_endpoint_id: the guideline comes from a study assistant; "
                              "choose one, or turn salam.guideline off")
    if not options.guideline and options.retrieve_from == "none":
        raise ExamConfigError("salam: with no guideline and no retrieval nothing is shown; use mode plain")
    return options


def _threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ExamConfigError(f"salam.threshold must be a cosine similarity from 0 to 1, got {value!r}")
    return float(value)


def _lbt(value: Any, mode: str) -> LbtOptions | None:
    data, prefix = _mode_settings(value, mode, "lbt", LbtOptions), "lbt."
    if data is None:
        return None
    if "teacher_run_id" not in data:
        raise ExamConfigError("lbt.teacher_run_id: choose the LbT teacher run whose rationales are examined")
    options = LbtOptions(teacher_run_id=_whole(data, "teacher_run_id", 0, 1, MAX_ID, prefix),
                         related_rule=_choice(data, "related_rule", "similar", RELATED_RULES, prefix),
                         exam_problems=_whole(data, "exam_problems", 3, 1, 16, prefix),
                         repetitions=_whole(data, "repetitions", 3, 1, 16, prefix),
                         group_key=data.get("group_key", ""))
    if not isinstance(options.group_key, str):
        raise ExamConfigError("lbt.group_key must be a metadata key (text)")
    if (options.related_rule == "same_group") != bool(options.group_key):
        raise ExamConfigError("lbt.group_key is needed by, and only used by, the same_group related_rule")
    return options
