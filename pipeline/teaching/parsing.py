"""Helpers shared by the teacher-output parsers: reply text, the first JSON object in prose, final-answer sentences.

Every parser here is total: whatever a teacher sends back (prose, broken JSON, nothing, 200 KB of
braces) gives a result, never an exception, and runs in time linear in the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

# Parse attempts on brace-balanced spans before giving up: a reply with more candidate objects
# than this is not a reply that follows the format, and each attempt costs up to the span's length.
MAX_JSON_CANDIDATES = 64


def reply_text(text: object) -> str:
    """A teacher reply as text: None (no content came back) is empty, bytes are decoded leniently."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        return text.decode("utf-8", errors="replace")
    return text if isinstance(text, str) else str(text)


@dataclass(frozen=True)
class TeacherText:
    """A free-text teacher reply (FAIR feedback or rationale, GSI correction): any non-empty text is usable."""

    ok: bool
    error: str
    raw: str
    text: str = ""


def parse_teacher_text(text: object) -> TeacherText:
    """The reply, stripped; an empty or whitespace-only reply is a parse failure."""
    raw = reply_text(text)
    if not raw.strip():
        return TeacherText(False, "empty reply", raw)
    return TeacherText(True, "", raw, raw.strip())


# --- the first JSON object in a reply --------------------------------------------------------------

_OBJECT_TOKEN = re.compile(r'\{+|\}+|"')  # what matters inside an object, outside its strings
_STRING_TOKEN = re.compile(r'["\\]')  # what matters inside a JSON string
_BRACE_RUN = re.compile(r"\{+|\}+")


def find_json_object(text: str, wanted_keys: Iterable[str] = ()) -> tuple[dict[str, Any] | None, str]:
    """The first ``{...}`` in ``text`` that parses as a JSON object, or None and why not.

    Candidates are brace-balanced spans in order of where they start, so a reply's prose and
    ```json fences are ignored and of two objects the first wins. When ``wanted_keys`` is given,
    the first object holding any of those keys is preferred, so a stray ``{}`` in the prose or a
    wrapper object (``{"feedback": {...}}``) does not hide the real answer; failing that, the first
    object that parses is returned for the caller to report what it lacks.
    """
    wanted = set(wanted_keys)
    first: dict[str, Any] | None = None
    first_error = ""
    for start, end in islice(_candidate_spans(text), MAX_JSON_CANDIDATES):
        parsed, error = _load_object(text[start:end])
        if parsed is None:
            first_error = first_error or error
            continue
        if not wanted or wanted & parsed.keys():
            return parsed, ""
        first = parsed if first is None else first
    if first is not None:
        return first, ""
    return None, f"not valid JSON: {first_error}" if first_error else "no JSON object found"


def _load_object(span: str) -> tuple[dict[str, Any] | None, str]:
    try:
        # strict=False lets a raw newline inside a string through: teachers often write one.
        parsed = json.loads(span, strict=False)
    except RecursionError:
        return None, "nested too deeply"
    except ValueError as exc:
        return None, str(exc)
    return parsed, ""  # a span that starts with "{" and parses is always a dict


def _candidate_spans(text: str) -> Iterator[tuple[int, int]]:
    """Brace-balanced spans, lazily: each top-level object (braces inside JSON strings skipped) and
    the objects nested in it, by start; then those of a string-blind pass, which finds objects that
    a stray quote in the prose hides from the first. Brace runs are handled in bulk, so 200 KB of
    braces costs a few C-level scans, not a Python step per brace."""
    seen = set()
    for group in _string_aware_groups(text):
        for span in sorted(group):
            seen.add(span)
            yield span
    for span in sorted(_plain_spans(text)):
        if span not in seen:
            yield span


def _string_aware_groups(text: str) -> Iterator[list[tuple[int, int]]]:
    at = text.find("{")  # in prose, quotes mean nothing
    while at >= 0:
        spans, at = _balanced_group(text, at)
        if spans:
            yield spans
        at = text.find("{", at) if at >= 0 else -1


def _balanced_group(text: str, at: int) -> tuple[list[tuple[int, int]], int]:
    """The spans closed from the object opening at ``at`` until its depth is back to 0, and where that is
    (-1 when the text ends first)."""
    spans: list[tuple[int, int]] = []
    opened: list[int] = []
    while True:
        token = _OBJECT_TOKEN.search(text, at)
        if token is None:
            return spans, -1
        at = token.end()
        if token.group()[0] == "{":
            opened.extend(range(token.start(), at))
        elif token.group()[0] == "}":
            at = _close(opened, spans, token.start(), at)
            if not opened:
                return spans, at
        else:
            at = _string_end(text, at)


def _close(opened: list[int], spans: list[tuple[int, int]], start: int, end: int) -> int:
    """Close a run of "}" from ``start`` to ``end`` against ``opened``; where the last one that matched ends."""
    count = min(end - start, len(opened))
    for offset in range(count):
        spans.append((opened.pop(), start + offset + 1))
    return start + count if count else end


def _string_end(text: str, at: int) -> int:
    """Where the JSON string that started just before ``at`` ends; len(text) when it never does."""
    while True:
        token = _STRING_TOKEN.search(text, at)
        if token is None:
            return len(text)
        if token.group() == '"':
            return token.end()
        at = token.end() + 1  # a backslash escapes the next character, quote included


def _plain_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    opened: list[int] = []
    for run in _BRACE_RUN.finditer(text):
        if run.group()[0] == "{":
            opened.extend(range(run.start(), run.end()))
        else:
            _close(opened, spans, run.start(), run.end())
    return spans


def required_string(data: dict[str, Any], key: str) -> tuple[str, str]:
    """``data[key]`` as a stripped string, or "" and why it cannot be used."""
    if key not in data:
        return "", f"missing key {key!r}"
    value = data[key]
    if not isinstance(value, str):
        return "", f"{key!r} must be a string, got {_json_kind(value)}"
    if not value.strip():
        return "", f"{key!r} is empty"
    return value.strip(), ""


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "an object" if isinstance(value, dict) else "a list"


# --- "The answer is X" ----------------------------------------------------------------------------

_ANSWER_SENTENCE = re.compile(r"the\s+(?:final\s+)?answer\s+is\s*:?", re.IGNORECASE)


def last_answer_sentence(text: str) -> str | None:
    """X in the last "The answer is X" (or "The final answer is: X") of ``text``; None when there is none.

    X is the rest of that line, without markdown bold and one closing full stop ("41." -> "41",
    "3.5." -> "3.5"); an empty X is None.
    """
    last = None
    for last in _ANSWER_SENTENCE.finditer(text):
        pass
    if last is None:
        return None
    line = text[last.end():].split("\n", 1)[0]
    answer = line.replace("**", "").strip()
    answer = answer[:-1].rstrip() if answer.endswith(".") else answer
    return answer or None
