"""The contamination guard: exam problems that also appear in a checkpoint's training data, exactly or nearly.

Exact: the same question after `normalise_question`, compared by SHA-256. Near: MiniLM cosine of the two
texts at or above a threshold, 0.95 by default. Measured with all-MiniLM-L6-v2 on GSM8K's first problem: a
reworded copy scores 0.995, a shortened one 0.96, the same template with other numbers 0.98 (MiniLM barely
sees numbers), another GSM8K problem 0.43. So a near match is a warning for a person to look at, not proof;
an exact one is certain. Pass each training example's *question* (not its whole prompt), so both sides are
the same kind of text.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.exams.retrieval import Embedder, unit_rows

NEAR_DUPLICATE_THRESHOLD = 0.95
_WHITESPACE = re.compile(r"\s+")
_EDGES = string.punctuation + string.whitespace
_CHUNK = 4096  # training rows per matrix product, to bound memory on large training sets


def normalise_question(text: str) -> str:
    """Unicode NFKC, lower case, every whitespace run as one space, punctuation and spaces trimmed at both ends.

    Inner punctuation stays ("3.5" is not "35"); the ends go, so "What is 2+2?" matches "what is 2+2".
    """
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).lower())
    return text.strip(_EDGES)


def question_hash(text: str) -> str:
    """The SHA-256 (hex) of the normalised question: what the exact check compares."""
    return hashlib.sha256(normalise_question(text).encode()).hexdigest()


@dataclass(frozen=True)
class Match:
    """One training example an exam problem matches: "exact" (score 1.0) or "near" (its cosine)."""

    training_id: Hashable
    kind: str
    score: float


def find_contamination(exam: Sequence[tuple[Hashable, str]], training: Sequence[tuple[Hashable, str]], *,
                       embedder: Embedder | None = None, threshold: float = NEAR_DUPLICATE_THRESHOLD
                       ) -> dict[Hashable, list[Match]]:
    """Exam problem id -> its matches among the training examples, for the flagged problems only (in exam order).

    ``exam`` and ``training`` are (id, question text) pairs. Without an ``embedder`` only exact matches are
    found. A training example matched exactly is not listed again as near. Matches: exact ones first, then
    by score, highest first; equal scores keep training order.
    """
    by_hash: dict[str, list[Hashable]] = {}
    for training_id, text in training:
        by_hash.setdefault(question_hash(text), []).append(training_id)
    found = {exam_id: [Match(tid, "exact", 1.0) for tid in by_hash.get(question_hash(text), [])]
             for exam_id, text in exam}
    if embedder is not None and exam and training:
        _add_near(found, exam, training, embedder, threshold)
    return {exam_id: matches for exam_id, matches in found.items() if matches}


def _add_near(found: dict[Hashable, list[Match]], exam: Sequence[tuple[Hashable, str]],
              training: Sequence[tuple[Hashable, str]], embedder: Embedder, threshold: float) -> None:
    exam_vecs = unit_rows(embedder.encode([text for _, text in exam]))
    for start in range(0, len(training), _CHUNK):
        chunk = training[start:start + _CHUNK]
        scores = exam_vecs @ unit_rows(embedder.encode([text for _, text in chunk])).T
        for row, col in zip(*np.nonzero(scores >= threshold)):
            exam_id, training_id = exam[row][0], chunk[col][0]
            if all(m.training_id != training_id for m in found[exam_id]):
                found[exam_id].append(Match(training_id, "near", float(scores[row, col])))
    for matches in found.values():
        matches.sort(key=lambda m: (m.kind != "exact", -m.score))  # stable: training order among equals
