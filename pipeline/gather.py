"""A gather run's configuration and plan: which (problem, sample, round) answers are still to be asked for."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from pipeline.decoding import DecodingError, validate_decoding
from pipeline.guidance import GuidanceConfig, GuidanceError, validate_guidance
from pipeline.prompts import PromptConfig, PromptError

EXECUTIONS = ("http", "gpu_queue")


class GatherConfigError(ValueError):
    """A gather configuration that cannot run; the message names the option."""


@dataclass(frozen=True)
class GatherConfig:
    dataset_id: int
    student_endpoint_id: int
    split: str = "train"
    tasks: tuple[str, ...] = ()
    sample_size: int = 0  # 0: every problem of the split
    sample_seed: int = 0
    samples_per_problem: int = 1
    prompt: PromptConfig = field(default_factory=PromptConfig)
    decoding: dict = field(default_factory=dict)
    scorer: str = ""  # "": the dataset's own scorer
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    teacher_endpoint_id: int | None = None
    use_cache: bool = True
    execution: str = "http"

    def as_json(self) -> dict:
        data = asdict(self)
        data["tasks"] = list(self.tasks)
        data["guidance"]["kinds"] = list(self.guidance.kinds)
        return data


def _whole(data: dict, name: str, default: int, low: int, high: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise GatherConfigError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def parse_gather_config(data: dict[str, Any]) -> GatherConfig:
    """A validated GatherConfig from plain JSON (a form, the API or a stored run)."""
    if not isinstance(data, dict):
        raise GatherConfigError("the configuration must be a JSON object")
    known = {f for f in GatherConfig.__dataclass_fields__}
    unknown = sorted(set(data) - known)
    if unknown:
        raise GatherConfigError(f"unknown gather setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    try:
        prompt = PromptConfig.from_dict(data.get("prompt", {}))
        guidance = GuidanceConfig.from_dict(data.get("guidance", {}))
    except (PromptError, GuidanceError, TypeError) as error:
        raise GatherConfigError(str(error)) from None
    config = GatherConfig(
        dataset_id=_whole(data, "dataset_id", 0, 1, 2**62), student_endpoint_id=_whole(data, "student_endpoint_id", 0, 1, 2**62),
        split=data.get("split", "train"), tasks=tuple(data.get("tasks", ())),
        sample_size=_whole(data, "sample_size", 0, 0, 10_000_000), sample_seed=_whole(data, "sample_seed", 0, 0, 2**62),
        samples_per_problem=_whole(data, "samples_per_problem", 1, 1, 64), prompt=prompt,
        decoding=data.get("decoding", {}), scorer=data.get("scorer", ""), guidance=guidance,
        teacher_endpoint_id=data.get("teacher_endpoint_id"), use_cache=bool(data.get("use_cache", True)),
        execution=data.get("execution", "http"),
    )
    _check(config)
    return config


def _check(config: GatherConfig) -> None:
    if config.split not in ("train", "test", "all"):
        raise GatherConfigError(f"split must be train, test or all, got {config.split!r}")
    if config.execution not in EXECUTIONS:
        raise GatherConfigError(f"execution must be one of {', '.join(EXECUTIONS)}, got {config.execution!r}")
    if not all(isinstance(task, str) for task in config.tasks):
        raise GatherConfigError("tasks must be a list of task names")
    try:
        validate_decoding(config.decoding)
        validate_guidance(config.guidance, samples_per_problem=config.samples_per_problem,
                          has_teacher=config.teacher_endpoint_id is not None)
    except (DecodingError, GuidanceError, PromptError) as error:
        raise GatherConfigError(str(error)) from None
    if "n" in config.decoding:
        raise GatherConfigError("set samples_per_problem rather than n in the decoding settings")


def sample_problem_ids(problem_ids: Sequence[str], *, size: int, seed: int) -> list[str]:
    """A seeded sample of ``size`` ids (all when size is 0), in the order given; stable when ids are added."""
    if not size or size >= len(problem_ids):
        return list(problem_ids)

    def rank(problem_id: str) -> bytes:
        return hashlib.sha256(f"{seed}\x00{problem_id}".encode()).digest()

    chosen = set(sorted(problem_ids, key=rank)[:size])
    return [problem_id for problem_id in problem_ids if problem_id in chosen]


@dataclass(frozen=True)
class WorkItem:
    """One request to make: ``len(sample_indexes)`` samples of one problem in one round."""

    problem_id: int
    round: int
    sample_indexes: tuple[int, ...]
    guidance: str = ""


def pending_round_work(problem_ids: Iterable[int], *, round: int, samples: int, done: set[tuple[int, int, int]],
                       guidance: str = "") -> list[WorkItem]:
    """The samples of ``round`` not yet answered, one item per problem; ``done`` holds (problem, sample, round)."""
    work = []
    for problem_id in problem_ids:
        missing = tuple(s for s in range(samples) if (problem_id, s, round) not in done)
        if missing:
            work.append(WorkItem(problem_id=problem_id, round=round, sample_indexes=missing, guidance=guidance))
    return work
