"""Reads dataset files as JSON, JSON Lines or plain text, keeping line and record numbers for errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.benchmarks.records import DatasetFormatError

BOM = b"\xef\xbb\xbf"
DATA_SUFFIXES = {".json", ".jsonl", ".ndjson", ".txt"}
SPLIT_NAMES = {"train": "train", "test": "test", "dev": "test", "validation": "test", "eval": "test"}
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class SourceFile:
    """One file of a load; ``label`` is its name in messages and ids (its path inside a loaded folder)."""

    path: Path
    label: str

    @cached_property
    def stem(self) -> str:
        return PurePosixPath(self.label).stem

    @cached_property
    def split(self) -> str:
        """"train"/"test" when the file's name (or a folder inside the load) says so, else ""."""
        label = PurePosixPath(self.label)
        for name in (label.stem, *reversed(label.parent.parts)):
            if name.lower() in SPLIT_NAMES:
                return SPLIT_NAMES[name.lower()]
        return ""

    def error(self, message: str, **where: Any) -> DatasetFormatError:
        return DatasetFormatError(message, path=self.label, **where)


@dataclass(frozen=True)
class Item:
    """One raw record of a file and where it sits: ``index`` counts records from 1.

    ``context`` names the part of the file when records are numbered per part (SALAM's
    "Age_zero_shot train_set").
    """

    value: Any
    source: SourceFile
    index: int
    line: int | None = None
    record: int | None = None
    context: str = ""

    def error(self, message: str, field: str | None = None) -> DatasetFormatError:
        message = f"{self.context}: {message}" if self.context else message
        return self.source.error(message, line=self.line, record=self.record, field=field)

    def place(self) -> str:
        """Where the record sits, for messages that name two records."""
        return place_text(self.source.label, self.line, self.record, self.context)


def place_text(label: str, line: int | None, record: int | None, context: str = "") -> str:
    label = f"{label} {context}" if context else label
    if line is not None:
        return f"{label} line {line}"
    return f"{label} record {record}" if record is not None else label


def expand_sources(path: str | Path | Sequence[str | Path]) -> list[SourceFile]:
    """The files a load reads: one file, every data file of a folder (natural name order), or a list."""
    if isinstance(path, (str, Path)):
        return _expand_one(Path(path))
    sources = [source for entry in path for source in _expand_one(Path(entry))]
    if not sources:
        raise DatasetFormatError("no files given")
    return sources


def _expand_one(path: Path) -> list[SourceFile]:
    if path.is_file():
        return [SourceFile(path, path.name)]
    if not path.is_dir():
        raise DatasetFormatError("no such file or folder", path=str(path))
    files = [
        candidate for candidate in path.rglob("*")
        if candidate.is_file() and candidate.suffix.lower() in DATA_SUFFIXES
        and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
    ]
    if not files:
        raise DatasetFormatError("folder has no data files (.json, .jsonl, .txt)", path=str(path))
    labels = sorted((candidate.relative_to(path).as_posix() for candidate in files), key=_natural_key)
    return [SourceFile(path / label, label) for label in labels]


def _natural_key(label: str) -> list[Any]:
    """Sort "2.json" before "10.json" (MATH folders number their problems)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", label)]


MAGIC_NUMBERS = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or an Excel or Word file)", b"\x1f\x8b": "a gzip archive",
}


@dataclass(frozen=True)
class Layout:
    """What a file looks like from its first bytes: "jsonl", "json", "text", "binary" or "empty"."""

    kind: str
    first_line: str = ""  # for "binary": the kind of file its signature shows ("a PNG image"), if known
    bad_byte: int | None = None


def sniff_layout(source: SourceFile) -> Layout:
    with source.path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
        offset = len(BOM) if head.startswith(BOM) else 0
        if _looks_binary(head):
            kind = next((name for magic, name in MAGIC_NUMBERS.items() if head.startswith(magic)), "")
            return Layout("binary", kind, _first_bad_byte(head))
        handle.seek(offset)
        lines = (raw for raw in handle if raw.strip())
        first = next(lines, None)
        if first is None:
            return Layout("empty")
        layout = _layout_of_first_line(first.decode("utf-8", errors="replace").strip())
        if layout.kind == "jsonl" and source.path.suffix.lower() == ".json" and next(lines, None) is None:
            return Layout("json", layout.first_line)  # a .json file holding one object on one line
        return layout


def _looks_binary(head: bytes) -> bool:
    """NUL bytes, a known file signature, or mostly undecodable bytes: not a text file at all."""
    if b"\x00" in head or any(head.startswith(magic) for magic in MAGIC_NUMBERS):
        return True
    undecodable = head.decode("utf-8", errors="replace").count("\ufffd")
    return undecodable > max(4, len(head) // 20)


def _first_bad_byte(head: bytes) -> int | None:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    return None


def _layout_of_first_line(line: str) -> Layout:
    if line.startswith("["):
        return Layout("json", line)
    if line.startswith("{") and line.endswith("}"):
        return Layout("jsonl", line)
    if line.startswith("{"):
        return Layout("json", line)
    return Layout("text", line)


def json_items(source: SourceFile) -> Iterator[Item]:
    """The records of a JSON Lines file (streamed), a JSON array, or a single JSON object."""
    layout = sniff_layout(source)
    if layout.kind == "jsonl":
        yield from _jsonl_items(source)
        return
    if layout.kind == "text":
        start = _preview(layout.first_line)
        raise source.error(f"not JSON or JSON Lines: the file is plain text starting {start}", line=1)
    document = json_document(source, layout)
    if isinstance(document, list):
        if not document:
            raise source.error("file holds an empty JSON array")
        for number, value in enumerate(document, start=1):
            yield Item(value, source, number, record=number)
    else:
        yield Item(document, source, 1)


def json_document(source: SourceFile, layout: Layout | None = None) -> Any:
    """The whole file parsed as one JSON value."""
    layout = layout or sniff_layout(source)
    _refuse_empty_or_binary(source, layout)
    data = source.path.read_bytes()
    offset = len(BOM) if data.startswith(BOM) else 0
    text = _decode(data[offset:], source, offset)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        hint = " (the file ends in the middle of a value; is it cut off?)" if _ends_early(error) else ""
        raise source.error(_json_problem(error) + hint, line=error.lineno) from None


def _jsonl_items(source: SourceFile) -> Iterator[Item]:
    offset, index = 0, 0
    with source.path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            start = len(BOM) if number == 1 and raw.startswith(BOM) else 0
            text = _decode(raw[start:], source, offset + start, line=number)
            offset += len(raw)
            if not text.strip():
                continue
            index += 1
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise source.error(_json_problem(error) + _line_hint(error, raw), line=number) from None
            yield Item(value, source, index, line=number)
    if index == 0:
        raise source.error("file is empty")


def text_lines(source: SourceFile) -> list[str]:
    """The file's lines without line endings (plain-text formats such as LogiQA)."""
    _refuse_empty_or_binary(source, sniff_layout(source))
    data = source.path.read_bytes()
    offset = len(BOM) if data.startswith(BOM) else 0
    return [line.rstrip("\r") for line in _decode(data[offset:], source, offset).split("\n")]


def head_lines(source: SourceFile, count: int) -> list[str]:
    """The first ``count`` lines, for telling a plain-text format without reading the whole file."""
    with source.path.open("rb") as handle:
        raws = [raw for _, raw in zip(range(count), handle)]
    if raws and raws[0].startswith(BOM):
        raws[0] = raws[0][len(BOM):]
    return [raw.decode("utf-8", errors="replace").rstrip("\r\n") for raw in raws]


def _refuse_empty_or_binary(source: SourceFile, layout: Layout) -> None:
    if layout.kind == "empty":
        raise source.error("file is empty")
    if layout.kind == "binary":
        raise source.error(describe_binary(layout))


def describe_binary(layout: Layout) -> str:
    """"a PNG image, not text", "not UTF-8 text at byte 12", "binary data (NUL bytes), not text"."""
    if layout.first_line:
        return f"{layout.first_line}, not text"
    if layout.bad_byte is not None:
        return f"not UTF-8 text at byte {layout.bad_byte}"
    return "binary data (NUL bytes), not text"


def _decode(data: bytes, source: SourceFile, offset: int, line: int | None = None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise source.error(f"not UTF-8 text at byte {offset + error.start}", line=line) from None


def _json_problem(error: json.JSONDecodeError) -> str:
    return f"invalid JSON at column {error.colno}: {error.msg}"


def _ends_early(error: json.JSONDecodeError) -> bool:
    return error.msg.startswith("Unterminated string") or not error.doc[error.pos:].strip()


def _line_hint(error: json.JSONDecodeError, raw: bytes) -> str:
    if not _ends_early(error):
        return ""
    if raw.endswith(b"\n"):
        return " (the line ends in the middle of a value)"
    return " (the last line ends in the middle of a value; is the file cut off?)"


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
