"""Loads one file, a folder or a list of files of one format into a LoadedFile, or fails with no records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.benchmarks.detect import common_format, detect_source
from pipeline.benchmarks.formats import FORMATS, READERS, Reader
from pipeline.benchmarks.reading import Item, SourceFile, expand_sources, place_text
from pipeline.benchmarks.records import DatasetFormatError, LoadedFile, ProblemRecord

Place = tuple[SourceFile, int | None, int | None, str]  # file, line, record, context


def load(path: str | Path | Sequence[str | Path], format: str | None = None) -> LoadedFile:
    """Read every record; ``format=None`` detects it from the content, all files must share it."""
    sources = expand_sources(path)
    name = _chosen_format(sources, format)
    reader = READERS[name]
    records = _read_all(sources, reader)
    if reader.classify is not None:
        benchmark, answer_format = reader.classify(records)
    else:
        benchmark, answer_format = FORMATS[name].benchmark, FORMATS[name].answer_format
    return LoadedFile(format=name, benchmark=benchmark, answer_format=answer_format, records=records)


def _chosen_format(sources: list[SourceFile], format: str | None) -> str:
    if format is None:
        return common_format(sources) if len(sources) > 1 else detect_source(sources[0])
    if format not in FORMATS:
        raise DatasetFormatError(f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    return format


def _read_all(sources: list[SourceFile], reader: Reader) -> list[ProblemRecord]:
    records: list[ProblemRecord] = []
    first_seen: dict[str, Place] = {}
    for source in sources:
        for item in reader.items(source):
            record = reader.convert(item)
            _check_unique_id(record, item, first_seen)
            records.append(record)
    if not records:
        raise sources[0].error("no problems found")
    return records


def _check_unique_id(record: ProblemRecord, item: Item, first_seen: dict[str, Place]) -> None:
    here = (item.source, item.line, item.record, item.context)
    earlier = first_seen.setdefault(record.external_id, here)
    if earlier != here:
        first = place_text(earlier[0].label, *earlier[1:])
        raise item.error(f"duplicate id {record.external_id!r}: {first} and {item.place()} have the same id")
