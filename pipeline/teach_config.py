"""A teacher run's configuration: which mistakes, which teachers, which method; checked with clear messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.decoding import DecodingError, validate_decoding
from pipeline.teaching import METHODS


class TeachConfigError(ValueError):
    """A teacher-run configuration that cannot run; the message names the option."""


@dataclass(frozen=True)
class TeachConfig:
    method: str
    teacher_endpoint_ids: tuple[int, ...]
    gather_run_id: int | None = None  # the mistakes of this gather run...
    attempt_ids: tuple[int, ...] = ()  # ...or these mistakes
    dataset_id: int | None = None  # LbT: rationales for the problems of this dataset split
    split: str = "test"
    samples: int = 1  # answers per mistake and teacher
    decoding: dict = field(default_factory=dict)
    budget_usd: float | None = None
    use_cache: bool = True
    hint_answer: bool = False  # LEMA: show the teacher the gold answer (LEMA's released prompt does not); FAIR always does
    template_versions: dict = field(default_factory=dict)  # template name -> version; empty: the latest

    def as_json(self) -> dict:
        data = asdict(self)
        data["teacher_endpoint_ids"], data["attempt_ids"] = list(self.teacher_endpoint_ids), list(self.attempt_ids)
        return data


def _ids(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise TeachConfigError(f"{name} must be a list of ids")
    return tuple(value)


def parse_teach_config(data: dict[str, Any]) -> TeachConfig:
    if not isinstance(data, dict):
        raise TeachConfigError("the configuration must be a JSON object")
    unknown = sorted(set(data) - set(TeachConfig.__dataclass_fields__))
    if unknown:
        raise TeachConfigError(f"unknown teacher-run setting {unknown[0]!r}")
    config = TeachConfig(**{**data, "teacher_endpoint_ids": _ids(data.get("teacher_endpoint_ids", []), "teacher_endpoint_ids"),
                            "attempt_ids": _ids(data.get("attempt_ids", []), "attempt_ids")})
    _check(config)
    return config


def _check(config: TeachConfig) -> None:
    if config.method not in METHODS:
        raise TeachConfigError(f"method must be one of {', '.join(METHODS)}, got {config.method!r}")
    if not config.teacher_endpoint_ids:
        raise TeachConfigError("choose at least one teacher")
    if len(set(config.teacher_endpoint_ids)) != len(config.teacher_endpoint_ids):
        raise TeachConfigError("a teacher is listed twice")
    if config.method == "fair" and len(config.teacher_endpoint_ids) < 2:
        raise TeachConfigError("FAIR's peer review needs at least two teachers, each scoring the others")
    sources = [config.gather_run_id is not None, bool(config.attempt_ids), config.dataset_id is not None]
    if sum(sources) != 1:
        raise TeachConfigError("give exactly one source: gather_run_id, attempt_ids or (for LbT) dataset_id")
    if (config.method == "lbt") != (config.dataset_id is not None):
        raise TeachConfigError("LbT writes rationales for a dataset's problems (dataset_id); the other methods "
                               "teach from mistakes (gather_run_id or attempt_ids)")
    if not isinstance(config.samples, int) or not 1 <= config.samples <= 32:
        raise TeachConfigError(f"samples must be a whole number from 1 to 32, got {config.samples!r}")
    if config.budget_usd is not None and (not isinstance(config.budget_usd, (int, float)) or config.budget_usd < 0):
        raise TeachConfigError("budget_usd must be a non-negative number of dollars")
    try:
        validate_decoding(config.decoding)
    except DecodingError as error:
        raise TeachConfigError(str(error)) from None
    if "n" in config.decoding:
        raise TeachConfigError("set samples rather than n in the decoding settings")
