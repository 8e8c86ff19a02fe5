"""Train/test split rules for imported problems: keep the file's, a seeded split, or SALAM's first 80% per task."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from pipeline.benchmarks.records import DatasetFormatError, ProblemRecord

SPLIT_RULES = ("auto", "file", "seeded", "first80")


@dataclass(frozen=True)
class SplitRule:
    rule: str = "auto"
    seed: int = 0
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.rule not in SPLIT_RULES:
            raise ValueError(f"unknown split rule {self.rule!r}: use one of {', '.join(SPLIT_RULES)}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test fraction must be between 0 and 1 (got {self.test_fraction})")


def split_labels(records: Sequence[ProblemRecord], rule: SplitRule) -> list[str]:
    """The split ("train" or "test") of each record under ``rule``, in the records' order.

    Labels rather than copies of the records: an import of 100,000 problems should not copy each one.
    """
    name = rule.rule
    if name == "auto":
        name = "file" if records and all(r.split in ("train", "test") for r in records) else "seeded"
    if name == "file":
        return _keep_file_split(records)
    if name == "first80":
        return _first_fraction_per_task(records, train_fraction=0.8)
    return _seeded_split(records, seed=rule.seed, test_fraction=rule.test_fraction)


def _keep_file_split(records: Sequence[ProblemRecord]) -> list[str]:
    for index, record in enumerate(records, start=1):
        if record.split not in ("train", "test"):
            raise DatasetFormatError(
                "the file does not say which split this problem belongs to; choose a seeded or first80 split",
                record=index,
                field="split",
            )
    return [record.split for record in records]


def _seeded_split(records: Sequence[ProblemRecord], *, seed: int, test_fraction: float) -> list[str]:
    # Rank by a hash of (seed, id) rather than shuffling: the same problem lands in the same
    # split whatever the file order, and adding problems later does not move the old ones.
    def rank(record: ProblemRecord) -> bytes:
        return hashlib.sha256(f"{seed}\x00{record.external_id}".encode()).digest()

    test_count = round(len(records) * test_fraction)
    test_ids = {r.external_id for r in sorted(records, key=rank)[:test_count]}
    return ["test" if r.external_id in test_ids else "train" for r in records]


def _first_fraction_per_task(records: Sequence[ProblemRecord], *, train_fraction: float) -> list[str]:
    # SALAM: within each task, the first 80% of problems in file order train, the rest test.
    by_task: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_task[record.task].append(index)
    split_of: dict[int, str] = {}
    for indexes in by_task.values():
        train_count = int(len(indexes) * train_fraction)
        for position, index in enumerate(indexes):
            split_of[index] = "train" if position < train_count else "test"
    return [split_of[i] for i in range(len(records))]
