"""Finding numbers in model text ("$1,234.50", "-3", "3/4", "\\frac{3}{4}", "50%") and comparing them with gold."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

REL_TOL = 1e-6
ABS_TOL = 1e-9  # so that 0 == 0.0000000001 after rounding noise, where a relative tolerance cannot help

_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-", "\uff0d": "-"})

_DECIMAL = r"(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_LATEX_PART = r"(?:\{\s*(-?\d+(?:\.\d+)?)\s*\}|(\d))"
_NUMBER = re.compile(
    r"\\[dt]?frac\s*" + _LATEX_PART + r"\s*" + _LATEX_PART  # \frac{3}{4}, \dfrac34
    # A minus counts only where it cannot be subtraction ("5-3") or part of a word ("COVID-19").
    + r"|(?P<sign>(?<![\w)\]}.])-)?(?:[$€£¥₹]\s?(?P<sign2>-)?)?"
    + r"(?P<number>" + _DECIMAL + r")(?:/(?P<denominator>\d+(?:\.\d+)?)(?!\d|,\d))?(?P<percent>\s?%)?"
)


@dataclass(frozen=True)
class Number:
    """A number found in text: its value, a canonical spelling ("1234", "0.5", "3/4", "50%") and where it was."""

    value: float
    text: str
    percent: bool = False
    end: int = 0


def numbers_in(text: str) -> Iterator[Number]:
    """Every number in `text`, left to right; currency signs and thousands commas are dropped."""
    for match in _NUMBER.finditer(text.translate(_MINUS_SIGNS)):
        number = _from_match(match)
        if number is not None:
            yield number


def first_number(text: str) -> Number | None:
    return next(numbers_in(text), None)


def last_number(text: str) -> Number | None:
    last = None
    for last in numbers_in(text):
        pass
    return last


def gold_number(gold: str) -> Number | None:
    """The number a gold answer stands for, when it holds exactly one ("18", "$1,234", "\\frac{1}{2}", "-3")."""
    found = list(numbers_in(gold))
    return found[0] if len(found) == 1 else None


def same_number(found: Number, gold: Number) -> bool:
    """Equal within a relative 1e-6; a percent also matches its fraction ("50%" is 50 and 0.5)."""
    if close(found.value, gold.value):
        return True
    if found.percent and close(found.value / 100, gold.value):
        return True
    return gold.percent and close(found.value, gold.value / 100)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def canonical_decimal(text: str) -> str:
    """A decimal without thousands commas or trailing zeros: "1,234.50" -> "1234.5", "18.00" -> "18", ".5" -> "0.5"."""
    text = text.replace(",", "")
    negative = text.startswith("-")
    text = text.lstrip("-")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    text = text.lstrip("0") or "0"
    if text.startswith("."):
        text = "0" + text
    return "-" + text if negative and text != "0" else text


def _from_match(match: re.Match[str]) -> Number | None:
    if match.group("number") is None:
        return _latex_fraction(match)
    negative = bool(match.group("sign") or match.group("sign2"))
    numerator = canonical_decimal(match.group("number"))
    value = float(numerator)
    text = numerator
    if match.group("denominator"):
        denominator = canonical_decimal(match.group("denominator"))
        if float(denominator) == 0:
            return None
        value, text = value / float(denominator), f"{numerator}/{denominator}"
    percent = bool(match.group("percent"))
    return _signed(value, text + ("%" if percent else ""), negative, percent, match.end())


def _latex_fraction(match: re.Match[str]) -> Number | None:
    numerator = canonical_decimal(match.group(1) or match.group(2))
    denominator = canonical_decimal(match.group(3) or match.group(4))
    if float(denominator) == 0:
        return None
    value = float(numerator) / float(denominator)
    return Number(value, f"{numerator}/{denominator}", end=match.end())


def _signed(value: float, text: str, negative: bool, percent: bool, end: int) -> Number:
    if negative and value != 0:
        return Number(-value, "-" + text, percent, end)
    return Number(value, text, percent, end)
