"""How a seed file was serialised (indent, separators, escaping, ending), so it can be written back byte for byte."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class JsonLayout:
    """The ``json.dump`` arguments that reproduce a file, plus what surrounds the JSON value.

    The defaults are ``json.dump(indent=2)``, the layout of SALAM's files.
    """

    indent: int | str | None = 2
    item_separator: str = ","
    key_separator: str = ": "
    ensure_ascii: bool = True
    ending: str = ""  # whitespace after the closing bracket, usually "" or "\n"
    bom: bool = False

    def dumps(self, data: Any) -> bytes:
        text = json.dumps(
            data, indent=self.indent, ensure_ascii=self.ensure_ascii,
            separators=(self.item_separator, self.key_separator),
        )
        return (BOM if self.bom else b"") + (text + self.ending).encode("utf-8")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> JsonLayout:
        return cls(**{key: values[key] for key in cls.__dataclass_fields__ if key in values})



def detect_layout(raw: bytes) -> JsonLayout:
    """Read the layout off the file's own bytes: its first line break, first ':' and first ',' outside strings.

    A file that mixes styles (escaped and literal non-ASCII, CRLF line ends) gets the closest layout; its
    write-back then differs in bytes but not in the JSON value.
    """
    bom = raw.startswith(BOM)
    text = raw[len(BOM) if bom else 0:].decode("utf-8")
    body = text.rstrip()
    indent = _indent(body)
    return JsonLayout(
        indent=indent,
        item_separator=_separator(body, ",", "," if indent is not None else ", "),
        key_separator=_separator(body, ":", ": "),
        ensure_ascii=text.isascii(),
        ending=text[len(body):],
        bom=bom,
    )


def _indent(body: str) -> int | str | None:
    """None for one-line JSON; else the whitespace that opens the second line (as a count when all spaces)."""
    if len(body) < 2 or body[1] != "\n":
        return None
    second = body.split("\n", 2)[1]
    leading = second[: len(second) - len(second.lstrip(" \t"))]
    return len(leading) if set(leading) <= {" "} else leading


def _separator(body: str, mark: str, default: str) -> str:
    """The first ``mark`` outside a string with the spaces around it (in indented files, up to the line break)."""
    at = _first_outside_strings(body, mark)
    if at is None:
        return default
    start, end = at, at + 1
    while start > 0 and body[start - 1] == " ":
        start -= 1
    while end < len(body) and body[end] == " ":
        end += 1
    return body[start:end]


def _first_outside_strings(text: str, mark: str) -> int | None:
    in_string = escaped = False
    for position, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == mark:
            return position
    return None
