"""Lettered answer options as the benchmarks write them: "Options:\\n(A) ...", "A)5", "(B)"."""

from __future__ import annotations

import re
from string import ascii_uppercase

OPTIONS_HEADER = "\nOptions:\n"
OPTION_LINE = re.compile(r"\(([A-Z])\)\s?(.*)")
PARENTHESISED_LETTER = re.compile(r"\(([A-Z])\)")


def split_lettered_options(text: str) -> tuple[str, tuple[str, ...]] | None:
    """Split "question\\nOptions:\\n(A) x\\n(B) y" into the question and ("x", "y"); None if not that shape."""
    question, header, block = text.rpartition(OPTIONS_HEADER)
    if not header:
        return None
    lines = block.rstrip("\n").split("\n")
    if len(lines) > len(ascii_uppercase):
        return None
    choices = []
    for expected, line in zip(ascii_uppercase, lines):
        match = OPTION_LINE.fullmatch(line.strip())
        if match is None or match.group(1) != expected:
            return None
        choices.append(match.group(2).strip())
    return question.rstrip(), tuple(choices)


def parenthesised_letter(target: str) -> str | None:
    """"B" for "(B)"; None for anything else."""
    match = PARENTHESISED_LETTER.fullmatch(target.strip())
    return match.group(1) if match else None


def strip_letter_prefix(option: str, letter: str) -> str:
    """"5(√3 + 1)" for "A)5(√3 + 1)" or "(A) 5(√3 + 1)"; the option unchanged when it has no such prefix."""
    match = re.match(rf"\(?{letter}\)\s*", option)
    return option[match.end():].strip() if match else option.strip()


def has_letter_prefixes(options: list[str]) -> bool:
    """True when the options are written "A)...", "B)..." in order (AQuA style)."""
    return bool(options) and all(
        re.match(rf"\(?{letter}\)", option) for letter, option in zip(ascii_uppercase, options)
    )
