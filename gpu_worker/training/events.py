"""Progress events of a training run: JSON lines on the runner's stdout, read back by the Celery task.

A line is ``ERRATA_EVENT {json}``; everything else on stdout (a library's print) is not an event.
Only the main process of a multi-process run (world rank 0) emits, so a run reports once.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import TextIO

EVENT_MARKER = "ERRATA_EVENT "
METRIC_FIELDS = ("loss", "learning_rate", "tokens_per_s", "samples_per_s", "eval_loss", "grad_norm")


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def emit(event: dict, stream: TextIO | None = None) -> None:
    """Write one event line (flushed at once: the parent forwards it while training goes on)."""
    if not is_main_process():
        return
    stream = stream or sys.stdout
    stream.write(EVENT_MARKER + json.dumps(event, default=str) + "\n")
    stream.flush()


def parse_event_line(line: str) -> dict | None:
    """The event on a stdout line, or None for any other line (or a marker line that is not a JSON object)."""
    if not line.startswith(EVENT_MARKER):
        return None
    try:
        event = json.loads(line[len(EVENT_MARKER):])
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("type"), str) else None


def started_event(*, total_steps: int, examples: int, resumed_from: int | None) -> dict:
    return {"type": "started", "total_steps": total_steps, "examples": examples, "resumed_from": resumed_from}


def metrics_event(step: int, epoch: float | None, values: dict) -> dict:
    """Every metric field present: null for what was not measured at this step."""
    return {"type": "metrics", "step": step, "epoch": _number(epoch),
            **{name: _number(values.get(name)) for name in METRIC_FIELDS}}


def log_event(message: str, level: str = "info") -> dict:
    return {"type": "log", "level": level, "message": message}


def checkpoint_event(step: int, path: str) -> dict:
    return {"type": "checkpoint", "step": step, "path": path}


def done_event(status: str, *, error: str = "", manifest: str | None = None, last_checkpoint: str | None = None,
               metrics: dict | None = None) -> dict:
    return {"type": "done", "status": status, "error": error, "manifest": manifest,
            "last_checkpoint": last_checkpoint, "metrics": metrics or {}}


def _number(value) -> float | None:
    """A JSON-safe float: NaN and infinity (a diverged loss) become null rather than invalid JSON."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
