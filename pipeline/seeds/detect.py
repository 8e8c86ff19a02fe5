"""Tells a seed file's student-answer format from its parsed content (and, for SALAM collections, its name)."""

from __future__ import annotations

from typing import Any

from pipeline.benchmarks import gsi as gsi_problems
from pipeline.benchmarks import salam as salam_problems
from pipeline.benchmarks.fields import json_kind
from pipeline.benchmarks.reading import SourceFile
from pipeline.labels import FAIR_FIELDS, SALAM_COLLECTION_FIELDS
from pipeline.seeds.gsi import PREDICTION_FIELDS

UNKNOWN = "not a seed file of student answers"


def detect_seed_format(source: SourceFile, data: Any) -> str:
    if isinstance(data, dict):
        if salam_problems.looks_like_status(data):
            return "salam_status"
        raise source.error(f"{UNKNOWN}: a JSON object, but not SALAM's status.json "
                           "(task -> {train_set, test_set, train_score, ...})")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        shown = "an empty array" if data == [] else json_kind(data[0] if isinstance(data, list) else data)
        raise source.error(f"{UNKNOWN}: expected SALAM's status.json or a JSON array of records, got {shown}")
    keys = data[0].keys()
    if set(SALAM_COLLECTION_FIELDS) <= keys:
        return _collection_format(source)
    if set(FAIR_FIELDS) <= keys:
        return _fair_format(keys)
    if gsi_problems.looks_like(data[0]):
        if set(PREDICTION_FIELDS) <= keys:
            return "gsi_results"
        raise source.error(f"{UNKNOWN}: GSI problems without the student's pred, pred_value and correct_pred "
                           "(load it as a dataset instead)", record=1)
    raise source.error(f"{UNKNOWN}: the first record has keys {', '.join(sorted(keys))[:200]}", record=1)


def _collection_format(source: SourceFile) -> str:
    # SALAM's collection records do not say whether they are mistakes or right answers; the file name does.
    name = source.path.name
    if name.startswith("mistake_"):
        return "salam_mistakes"
    if name.startswith("correct_"):
        return "salam_correct"
    raise source.error("a SALAM collection whose name starts with neither 'mistake_' nor 'correct_'; "
                       "give the format: salam_mistakes or salam_correct")


def _fair_format(keys: Any) -> str:
    if any(key.endswith("_feedback") for key in keys):
        return "fair_feedback"
    if any(key.endswith("_rationale") for key in keys):
        return "fair_rationale"
    return "fair_false"
