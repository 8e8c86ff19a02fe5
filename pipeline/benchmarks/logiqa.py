"""LogiQA plain text: 8 lines per example (blank, gold letter a-d, context, question, options A.-D.)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipeline.benchmarks.reading import Item, SourceFile, text_lines
from pipeline.benchmarks.records import ProblemRecord

LINES_PER_EXAMPLE = 8
LETTERS = "ABCD"
DOTTED_PREFIX = re.compile(r"\A[A-D]\s*[.．]\s*")
LOOSE_PREFIX = re.compile(r"\A[A-D][\s?？]\s*")


def looks_like(lines: list[str]) -> bool:
    """True when the first example has LogiQA's 8-line shape."""
    head = lines[:LINES_PER_EXAMPLE]
    return (
        len(head) == LINES_PER_EXAMPLE
        and not head[0].strip()
        and head[1].strip().upper() in LETTERS and len(head[1].strip()) == 1
        and all(line.strip() for line in head[2:])
    )


def items(source: SourceFile) -> Iterator[Item]:
    """One item per example: its 8 lines, ``line`` being the example's first (blank) line."""
    lines = text_lines(source)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise source.error("file is empty")
    for index, start in enumerate(range(0, len(lines), LINES_PER_EXAMPLE), start=1):
        yield Item(lines[start:start + LINES_PER_EXAMPLE], source, index, line=start + 1)


def convert(item: Item) -> ProblemRecord:
    _check_shape(item)
    lines = item.value
    return ProblemRecord(
        external_id=f"{item.source.stem}-{item.index}",
        question=f"{lines[2].strip()}\n{lines[3].strip()}",
        gold_answer=lines[1].strip().upper(),
        choices=strip_option_letters(lines[4:]),
        split=item.source.split,
    )


def _check_shape(item: Item) -> None:
    lines, first = item.value, item.line
    error = item.source.error
    if lines[0].strip():
        raise error(f"expected the blank line that starts an example, got {lines[0][:60]!r}", line=first)
    if len(lines) < 2 or lines[1].strip().upper() not in LETTERS or len(lines[1].strip()) != 1:
        found = repr(lines[1][:60]) if len(lines) > 1 else "the end of the file"
        raise error(f"expected the gold letter a, b, c or d, got {found}", line=first + 1, field="answer")
    names = ("context", "question", "option A", "option B", "option C", "option D")
    for offset, name in enumerate(names, start=2):
        if offset >= len(lines):
            raise error(f"the example ends early: {name} is missing (each example has 8 lines)", line=first + offset)
        if not lines[offset].strip():
            raise error(f"{name} is empty", line=first + offset)


def strip_option_letters(options: list[str]) -> tuple[str, ...]:
    """Drop "A." prefixes; upstream files also write "A ", "A?" or swap letters, so be lenient."""
    options = [option.strip() for option in options]
    if all(LOOSE_PREFIX.match(option) and option[0] == letter for letter, option in zip(LETTERS, options)):
        return tuple(LOOSE_PREFIX.sub("", option, count=1) for option in options)
    return tuple(DOTTED_PREFIX.sub("", option, count=1) for option in options)
