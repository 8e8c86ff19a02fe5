"""Decoding settings (temperature, top_p, max_tokens, stop, seed, n): checked once, with messages a user can act on."""

from __future__ import annotations

from typing import Any

MAX_TOKENS_LIMIT = 32_768
MAX_STOP_SEQUENCES = 4


class DecodingError(ValueError):
    """Decoding settings that no model server would accept; the message names the setting."""


def _number(params: dict, name: str, low: float, high: float, *, low_inclusive: bool = True) -> None:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DecodingError(f"{name} must be a number, got {value!r}")
    if value > high or value < low or (value == low and not low_inclusive):
        bracket = "[" if low_inclusive else "("
        raise DecodingError(f"{name} must be in {bracket}{low}, {high}], got {value}")


def _whole(params: dict, name: str, low: int, high: int) -> None:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodingError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise DecodingError(f"{name} must be between {low} and {high}, got {value}")


def _stop(params: dict) -> None:
    stop = params["stop"]
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) and s for s in sequences):
        raise DecodingError("stop must be a non-empty string or a list of them")
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise DecodingError(f"stop takes at most {MAX_STOP_SEQUENCES} sequences, got {len(sequences)}")


CHECKS = {
    "temperature": lambda p: _number(p, "temperature", 0.0, 2.0),
    "top_p": lambda p: _number(p, "top_p", 0.0, 1.0, low_inclusive=False),
    "max_tokens": lambda p: _whole(p, "max_tokens", 1, MAX_TOKENS_LIMIT),
    "seed": lambda p: _whole(p, "seed", 0, 2**63 - 1),
    "n": lambda p: _whole(p, "n", 1, 128),
    "stop": _stop,
}


def validate_decoding(params: Any) -> dict:
    """The settings as a plain dict if every one is known and in range; else DecodingError naming the first bad one."""
    if not isinstance(params, dict):
        raise DecodingError("decoding settings must be a JSON object such as {\"temperature\": 0.7}")
    unknown = sorted(set(params) - set(CHECKS))
    if unknown:
        raise DecodingError(f"unknown decoding setting {unknown[0]!r}; known: {', '.join(sorted(CHECKS))}")
    for name in params:
        CHECKS[name](params)
    return dict(params)
