"""What callers send and get back: ChatRequest, ChatResult, RunUsage and ModelError."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


class ModelError(Exception):
    """A model call that failed for good; ``reason`` is plain words fit to show a user."""

    def __init__(self, reason: str, *, attempts: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True)
class ChatRequest:
    """One prompt to sample ``n`` answers for; ``sample_index`` makes a resample a new request."""

    messages: tuple[dict, ...] | list[dict]   # [{"role": ..., "content": ...}]
    params: dict = field(default_factory=dict)  # overrides the endpoint's default_params
    n: int = 1
    sample_index: int = 0
    key: str = ""                                # the caller's id for it, echoed in the result

    def __post_init__(self):
        if self.n < 1:
            raise ValueError("n must be at least 1")


@dataclass
class ChatResult:
    """The answer (or the reason there is none) to one ChatRequest or completion prompt."""

    key: str
    texts: list[str]              # n texts; empty only when the request failed
    finish_reasons: list[str]
    prompt_tokens: int
    completion_tokens: int
    cost: float                   # USD paid for this call (0 when it came from the cache)
    latency_s: float
    cached: bool
    attempts: int                 # HTTP requests sent for it (0 when cached)
    error: str | None             # None when answered, else a plain-words reason

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The first answer ("" when failed): the common case of n = 1."""
        return self.texts[0] if self.texts else ""


@dataclass
class RunUsage:
    """Per-run accounting, shared by every client of a run. Tokens and cost count what was paid:
    answers from the cache add to ``cached`` and ``answered`` but cost nothing."""

    requests: int = 0
    answered: int = 0
    failed: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    attempts: int = 0             # HTTP requests sent, retries included
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, result: ChatResult) -> None:
        with self._lock:
            self.requests += 1
            self.answered += result.ok
            self.failed += not result.ok
            self.cached += result.cached
            self.attempts += result.attempts
            if not result.cached:
                self.prompt_tokens += result.prompt_tokens
                self.completion_tokens += result.completion_tokens
                self.cost += result.cost

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
