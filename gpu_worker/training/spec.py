"""The spec of one training run (what the web side sends to ``gpu_worker.train``), checked and typed.

Checking is pure apart from looking at the files the spec names; the task checks before it launches
anything, and the runner checks the same way when started by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_worker.training.layout import RunFolder
from pipeline.training.config import TrainConfig, TrainConfigError, config_from_dict

FIELDS = {"run_id", "config", "train_file", "eval_file", "output_dir", "reply_to"}


class TrainSpecError(ValueError):
    """A training spec that cannot run; the message starts with the field at fault."""


class TrainingError(RuntimeError):
    """A run that cannot go on, for a reason its message explains in full (no traceback needed)."""


@dataclass(frozen=True)
class EventsTo:
    """Where progress events go: ``task(run_id, event)`` on the web side's ``queue``."""

    task: str
    queue: str = "default"


@dataclass(frozen=True)
class TrainSpec:
    run_id: int | str
    config: TrainConfig
    train_file: Path
    eval_file: Path | None
    output_dir: Path
    reply_to: EventsTo | None

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.output_dir)

    def to_dict(self) -> dict:
        """JSON-ready; ``parse_train_spec(spec.to_dict())`` gives the same spec back."""
        return {
            "run_id": self.run_id, "config": self.config.to_dict(), "train_file": str(self.train_file),
            "eval_file": str(self.eval_file) if self.eval_file else None, "output_dir": str(self.output_dir),
            "reply_to": {"task": self.reply_to.task, "queue": self.reply_to.queue} if self.reply_to else None,
        }


def parse_train_spec(spec: Any) -> TrainSpec:
    """Check a training spec and return it typed; TrainSpecError names the field at fault."""
    if not isinstance(spec, Mapping):
        raise TrainSpecError(f"spec: expected a JSON object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - FIELDS)
    if unknown:
        raise TrainSpecError(f"spec.{unknown[0]}: unknown field (allowed: {', '.join(sorted(FIELDS))})")
    run_id = spec.get("run_id")
    if isinstance(run_id, bool) or not isinstance(run_id, (int, str)) or run_id == "":
        raise TrainSpecError("spec.run_id: expected the training run's id")
    if not isinstance(spec.get("config"), Mapping):
        raise TrainSpecError("spec.config: expected an object (a TrainConfig)")
    try:
        config = config_from_dict(spec["config"])
    except TrainConfigError as error:
        raise TrainSpecError(f"spec.config.{error}") from None
    eval_file = spec.get("eval_file")
    return TrainSpec(
        run_id=run_id,
        config=config,
        train_file=_existing_file(spec.get("train_file"), "spec.train_file"),
        eval_file=None if eval_file is None else _existing_file(eval_file, "spec.eval_file"),
        output_dir=_absolute(spec.get("output_dir"), "spec.output_dir"),
        reply_to=parse_events_to(spec.get("reply_to")),
    )


def _absolute(value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise TrainSpecError(f"{where}: expected an absolute path")
    path = Path(value)
    if not path.is_absolute():
        raise TrainSpecError(f"{where}: expected an absolute path, got {value!r}")
    return path


def _existing_file(value: Any, where: str) -> Path:
    path = _absolute(value, where)
    if not path.is_file():
        raise TrainSpecError(f"{where}: {path} does not exist")
    return path


def parse_events_to(value: Any) -> EventsTo | None:
    """The spec's reply_to: None when it has none."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("task"), str) or not value["task"].strip():
        raise TrainSpecError("spec.reply_to.task: expected the name of the web side's task")
    unknown = sorted(set(value) - {"task", "queue"})
    if unknown:
        raise TrainSpecError(f"spec.reply_to.{unknown[0]}: unknown field (allowed: queue, task)")
    queue = value.get("queue", "default")
    if not isinstance(queue, str) or not queue.strip():
        raise TrainSpecError("spec.reply_to.queue: expected a queue name")
    return EventsTo(task=value["task"], queue=queue)
