"""Tells a file's dataset format from its content: the layout of its first bytes, then its first record's keys."""

from __future__ import annotations

from pathlib import Path

from pipeline.benchmarks.fields import json_kind
from pipeline.benchmarks.formats import READERS
from pipeline.benchmarks.reading import (
    Item, SourceFile, describe_binary, expand_sources, head_lines, json_items, sniff_layout,
)
from pipeline.benchmarks.records import DatasetFormatError

UNKNOWN = "not a dataset in any known format"


def detect_format(path: str | Path) -> str:
    """The format name (a key of FORMATS) of a file, or of every data file in a folder."""
    return common_format(expand_sources(path))


def common_format(sources: list[SourceFile]) -> str:
    names = [(source.label, detect_source(source)) for source in sources]
    if len({name for _, name in names}) > 1:
        listing = ", ".join(f"{label} is {name}" for label, name in names)
        raise DatasetFormatError(f"all files of one load must have the same format, but {listing}")
    return names[0][1]


def detect_source(source: SourceFile) -> str:
    layout = sniff_layout(source)
    if layout.kind == "empty":
        raise source.error("file is empty")
    if layout.kind == "binary":
        raise source.error(f"{UNKNOWN}: {describe_binary(layout)}")
    if layout.kind == "text":
        if READERS["logiqa"].looks_like(head_lines(source, 8)):
            return "logiqa"
        raise source.error(
            f"{UNKNOWN}: plain text that is neither JSON, JSON Lines nor LogiQA's 8-line layout "
            f"(first line {layout.first_line[:60]!r})"
        )
    first = next(json_items(source))
    for name, reader in READERS.items():
        if not reader.plain_text and reader.looks_like(first.value):
            return name
    raise source.error(f"{UNKNOWN}: {_describe(first)}")


def _describe(first: Item) -> str:
    if first.line is not None:
        container = "JSON Lines whose first record is "
    elif first.record is not None:
        container = "a JSON array whose first record is "
    else:
        container = "JSON holding "
    if isinstance(first.value, dict):
        keys = ", ".join(sorted(map(str, first.value)))[:200]
        return f"{container}an object with keys {keys or '(none)'}"
    return container + json_kind(first.value)
