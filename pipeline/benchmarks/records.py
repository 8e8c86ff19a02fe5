"""The plain records every benchmark loader produces, and the error a bad file raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProblemRecord:
    """One problem as read from a file, before it becomes a database row.

    Multiple choice: ``choices`` holds the option texts without their letters and
    ``gold_answer`` is the letter ("A", "B", ...). Numbers: a canonical number string
    ("18", "0.5"). Booleans: "true" / "false" unless the benchmark's own targets differ
    (BBH keeps "Yes", "valid", "True" as written).
    """

    external_id: str
    question: str
    gold_answer: str
    choices: tuple[str, ...] = ()
    gold_rationale: str = ""
    split: str = ""  # "train", "test", or "" when the file does not say
    task: str = ""  # BBH task, BBQ category, MATH subject...
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadedFile:
    """What a loader read: its format, the benchmark kind (for the default scorer) and the records."""

    format: str
    benchmark: str
    answer_format: str  # "number", "multiple_choice", "boolean", "math", "text"
    records: list[ProblemRecord]


class DatasetFormatError(ValueError):
    """A file that cannot be imported; the message names the file, line or record and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        record: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.path, self.line, self.record, self.field = path, line, record, field
        where = [part for part in (
            path,
            f"line {line}" if line is not None else None,
            f"record {record}" if record is not None else None,
            f"field '{field}'" if field else None,
        ) if part]
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
