"""Typed field access for raw records, with errors that name the field, and canonical number strings."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from string import ascii_uppercase
from typing import Any

from pipeline.benchmarks.reading import Item
from pipeline.benchmarks.records import DatasetFormatError, ProblemRecord

NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
MISSING = object()


def json_kind(value: Any) -> str:
    """How a JSON value is called in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def record_object(item: Item) -> dict[str, Any]:
    if not isinstance(item.value, dict):
        raise item.error(f"expected a JSON object, got {json_kind(item.value)}")
    return item.value


def field_value(item: Item, key: str, default: Any = MISSING) -> Any:
    value = record_object(item).get(key, MISSING)
    if value is MISSING:
        if default is MISSING:
            raise item.error("missing", field=key)
        return default
    return value


def text_field(item: Item, key: str, default: Any = MISSING) -> str:
    value = field_value(item, key, default)
    if not isinstance(value, str):
        raise item.error(f"must be a string, got {json_kind(value)}", field=key)
    return value


def id_field(item: Item, key: str) -> str:
    value = field_value(item, key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise item.error(f"must be a non-empty string or an integer, got {json_kind(value)}", field=key)
    return str(value).strip()


def int_field(item: Item, key: str) -> int:
    value = field_value(item, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise item.error(f"must be an integer, got {json_kind(value)}", field=key)
    return value


def text_list_field(item: Item, key: str, default: Any = MISSING) -> list[str]:
    value = field_value(item, key, default)
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise item.error(f"must be a list of strings, got {json_kind(value)}", field=key)
    return value


def canonical_number(value: Any) -> str | None:
    """"51" for 51.0, "0.5" for 0.5, "1200" for "1,200"; None when ``value`` is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    text = repr(value) if isinstance(value, float) else str(value).strip().replace(",", "")
    if not NUMBER.fullmatch(text):
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def number_field(item: Item, key: str) -> str:
    """A gold number given as a JSON number or a numeric string, as its canonical string."""
    value = field_value(item, key)
    number = canonical_number(value)
    if number is None:
        raise item.error(f"must be a number, got {_shown(value)}", field=key)
    return number


def choice_letter(item: Item, letter: Any, count: int, field: str) -> str:
    """Check that ``letter`` names one of ``count`` choices ("A".."E"), case-insensitively."""
    letters = ascii_uppercase[:count]
    if not isinstance(letter, str) or letter.strip().upper() not in letters or not letter.strip():
        raise item.error(f"must be one of the letters {', '.join(letters)}, got {_shown(letter)}", field=field)
    return letter.strip().upper()


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json_kind(value)


def single_benchmark(records: list[ProblemRecord]) -> str:
    """The one benchmark named by every record's metadata; files that mix two must load apart."""
    kinds = sorted({record.metadata["benchmark"] for record in records})
    if len(kinds) > 1:
        raise DatasetFormatError(f"the files mix {' and '.join(kinds)} problems; load them separately")
    return kinds[0]
