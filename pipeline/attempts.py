"""One student answer as plain data: what the gather step, the seed importers and exporters exchange."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GUIDANCE_KINDS = ("", "answer", "rationale", "state_reset", "teacher_help")


@dataclass(frozen=True)
class AttemptRecord:
    """A student's answer to one problem: sample ``sample_index`` of round ``round``.

    Round 0 is the plain pass; rounds 1.. are GSI's guided resampling, with ``guidance`` naming
    the kind (answer-driven, rationale-driven, state reset, teacher help).
    """

    problem_external_id: str
    output: str  # the raw model output, exactly as returned
    extracted: str | None
    correct: bool
    sample_index: int = 0
    round: int = 0
    guidance: str = ""
    prompt: str = ""  # the prompt as sent (rendered messages, or the text of a completion prompt)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.guidance not in GUIDANCE_KINDS:
            raise ValueError(f"unknown guidance kind {self.guidance!r}; known: {', '.join(k for k in GUIDANCE_KINDS if k)}")
