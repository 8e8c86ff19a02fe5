"""Import and export the seeds' student-answer files (SALAM, FAIR, GSI) as problems plus attempts, losslessly.

``read_seed_file`` keeps each seed's own right/wrong label on the attempts, and everything needed to write
the file back byte for byte (see ``pipeline.seeds.records``); ``write_seed_file`` writes the seed's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.benchmarks.reading import SourceFile, json_document
from pipeline.benchmarks.records import DatasetFormatError
from pipeline.seeds import fair, gsi, salam
from pipeline.seeds.detect import detect_seed_format
from pipeline.seeds.layout import JsonLayout, detect_layout
from pipeline.seeds.records import SeedBundle

LAYOUT = "json_layout"  # bundle.extra: how the file was serialised


@dataclass(frozen=True)
class SeedFormat:
    """A seed file format: how to read it, how to write it, and its layout when the bundle has none."""

    name: str
    description: str
    read: Callable[[SourceFile, Any, str], SeedBundle]
    write: Callable[[SeedBundle, str], Any]
    layout: JsonLayout


_INDENT_4 = JsonLayout(indent=4)
SEED_FORMATS: dict[str, SeedFormat] = {seed.name: seed for seed in (
    SeedFormat("salam_status", "SALAM status.json: per task train_set/test_set with 0/1 scores",
               salam.read_status, salam.write_status, JsonLayout()),
    SeedFormat("salam_mistakes", "SALAM mistake_collections.json: the student's wrong answers",
               salam.read_collection, salam.write_collection, JsonLayout()),
    SeedFormat("salam_correct", "SALAM correct_collections.json: the student's right answers",
               salam.read_collection, salam.write_collection, JsonLayout()),
    SeedFormat("fair_false", "FAIR *_false_round0.json: problems with the student's wrong answer",
               fair.read, fair.write, _INDENT_4),
    SeedFormat("fair_feedback", "FAIR *_feedback_round0.json: a false file plus each teacher's feedback",
               fair.read, fair.write, _INDENT_4),
    SeedFormat("fair_rationale", "FAIR *_rationale_round0.json: a false file plus teacher rationales and scores",
               fair.read, fair.write, _INDENT_4),
    SeedFormat("gsi_results", "GSI results: problems with pred, pred_value and correct_pred",
               gsi.read, gsi.write, JsonLayout(indent=4, ensure_ascii=False)),
)}


def read_seed_file(path: str | Path, format: str | None = None) -> SeedBundle:
    """Read a seed file; ``format=None`` tells it from the content (and a SALAM collection's name)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError("no such file", path=str(path))
    source = SourceFile(path, path.name)
    data = json_document(source)
    name = format or detect_seed_format(source, data)
    if name not in SEED_FORMATS:
        raise DatasetFormatError(f"unknown seed format {name!r}; known: {', '.join(SEED_FORMATS)}", path=path.name)
    bundle = SEED_FORMATS[name].read(source, data, name)
    bundle.extra[LAYOUT] = detect_layout(path.read_bytes()).as_dict()
    return bundle


def write_seed_file(bundle: SeedBundle, path: str | Path, format: str | None = None) -> None:
    """Write ``bundle`` in ``format`` (default: the one it was read from), in that seed's own JSON layout.

    Written as read, the file comes back as it was. In another format the records are rendered from the
    problems and attempts alone, and a format of one label keeps only those attempts (salam_mistakes and
    the FAIR formats the wrong ones, salam_correct the right ones).
    """
    name = format or bundle.format
    if name not in SEED_FORMATS:
        raise ValueError(f"unknown seed format {name!r}; known: {', '.join(SEED_FORMATS)}")
    seed_format = SEED_FORMATS[name]
    data = seed_format.write(bundle, name)
    own_layout = name == bundle.format and LAYOUT in bundle.extra
    layout = JsonLayout.from_dict(bundle.extra[LAYOUT]) if own_layout else seed_format.layout
    Path(path).write_bytes(layout.dumps(data))


__all__ = ["SEED_FORMATS", "DatasetFormatError", "JsonLayout", "SeedBundle", "SeedFormat",
           "detect_seed_format", "read_seed_file", "write_seed_file"]
