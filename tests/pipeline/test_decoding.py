"""Decoding settings are checked with messages that name the setting."""

from __future__ import annotations

import pytest

from pipeline.decoding import DecodingError, validate_decoding


@pytest.mark.parametrize("params", [
    {},
    {"temperature": 0, "top_p": 1, "max_tokens": 1, "seed": 0, "n": 1},
    {"temperature": 2.0, "top_p": 0.01, "stop": "\n\n"},
    {"stop": ["Q:", "\n\n"], "max_tokens": 32768},
])
def test_valid_settings_pass_unchanged(params):
    assert validate_decoding(params) == params


@pytest.mark.parametrize("params,message", [
    ([], "must be a JSON object"),
    ({"temprature": 0.5}, "unknown decoding setting 'temprature'"),
    ({"temperature": -0.1}, "temperature must be in [0.0, 2.0], got -0.1"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"temperature": True}, "temperature must be a number"),  # bool is an int in Python; not a temperature
    ({"top_p": 0}, "top_p must be in (0.0, 1.0]"),  # top_p 0 would keep no token at all
    ({"max_tokens": 0}, "max_tokens must be between 1 and"),
    ({"max_tokens": 12.5}, "max_tokens must be a whole number"),
    ({"stop": ""}, "stop must be a non-empty string"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop takes at most 4"),
    ({"n": 0}, "n must be between 1 and 128"),
    ({"seed": -1}, "seed must be between 0"),
])
def test_invalid_settings_name_what_is_wrong(params, message):
    with pytest.raises(DecodingError) as error:
        validate_decoding(params)
    assert message in str(error.value)
