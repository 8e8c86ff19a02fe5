"""Shared parsing helpers, and every teacher parser against huge, hostile and random replies: fast, never raising."""

from __future__ import annotations

import random
import time

import pytest

from pipeline.teaching import (
    parse_fair_feedback, parse_gsi_help, parse_lbt_rationale, parse_lema_correction, parse_peer_score,
    parse_salam_feedback,
)
from pipeline.teaching.parsing import MAX_JSON_CANDIDATES, find_json_object, last_answer_sentence, reply_text

PARSERS = [parse_salam_feedback, parse_lema_correction, parse_peer_score, parse_lbt_rationale, parse_gsi_help,
           parse_fair_feedback]
SIZE = 200_000


@pytest.mark.parametrize("text,wanted,found,error", [
    ('x {"a": 1} y', (), {"a": 1}, ""),
    ('{"a": 1} {"b": 2}', (), {"a": 1}, ""),
    ('{"a": 1} {"b": 2}', ("b",), {"b": 2}, ""),
    ('{"a": 1}', ("b",), {"a": 1}, ""),  # nothing has the wanted key: the first object, for the caller to report
    ('{"a": {"b": 2}}', ("b",), {"b": 2}, ""),
    ('{"a": "}"}', (), {"a": "}"}, ""),
    ('{"a": "\\"}"}', (), {"a": '"}'}, ""),  # an escaped quote does not end the string
    ('{"a": "\\\\"}', (), {"a": "\\"}, ""),  # an escaped backslash does not escape the quote
    ("no braces", (), None, "no JSON object found"),
    ("{ not json }", (), None, "not valid JSON: Expecting property name enclosed in double quotes"),
    ("}{", (), None, "no JSON object found"),
])
def test_find_json_object(text, wanted, found, error):
    parsed, reason = find_json_object(text, wanted)
    assert parsed == found
    assert reason.startswith(error) and bool(reason) == bool(error)


def test_find_json_object_gives_up_after_a_bounded_number_of_candidates():
    # Each attempt costs up to its span's length; a reply with hundreds of broken objects is not a reply.
    broken = "{x} " * (MAX_JSON_CANDIDATES + 5)
    assert find_json_object(broken + '{"a": 1}')[0] is None
    assert find_json_object("{x} " * (MAX_JSON_CANDIDATES - 1) + '{"a": 1}')[0] == {"a": 1}


def test_very_deep_nesting_is_a_failure_not_a_crash():
    parsed, reason = find_json_object('{"a":' * 5000 + "1" + "}" * 5000)
    assert parsed is None and reason


@pytest.mark.parametrize("text,answer", [
    ("The answer is 41.", "41"),
    ("the answer is 3.5.", "3.5"),
    ("The answer is: **42**", "42"),
    ("The final answer is 7\nmore text", "7"),
    ("The answer is 1. Then the answer is 2", "2"),
    ("The answer is", None),
    ("The answer is .", None),
    ("nothing here", None),
])
def test_last_answer_sentence(text, answer):
    assert last_answer_sentence(text) == answer


@pytest.mark.parametrize("value,text", [(None, ""), (b"caf\xc3\xa9 \xff", "café \ufffd"), (42, "42"), ("x", "x")])
def test_reply_text(value, text):
    assert reply_text(value) == text


HUGE = {
    "open braces": "{" * SIZE,
    "close braces": "}" * SIZE,
    "brace pairs": "{}" * (SIZE // 2),
    "spaced open braces": "{ " * (SIZE // 2),
    "alternating close-open": "}{" * (SIZE // 2),
    "ever deeper pairs": "{{}" * (SIZE // 3),
    "open strings": '{"' * (SIZE // 2),
    "colons and quotes": '{"a":"b",' * (SIZE // 9),
    "nested unclosed objects": '{"a":' * (SIZE // 5),
    "escaped quotes in an open string": '{"' + '\\"' * (SIZE // 2),
    "open brackets": "[" * SIZE,
    "bracket ratings": "[4]" * (SIZE // 3),
    "long bracket contents": ("[" + "9" * 39 + "]") * (SIZE // 41),
    "answer sentences": "The answer is " * (SIZE // 14),
    "headings": "Explanation:\n" * (SIZE // 13),
    "marker lines": "[[Final Answer]]:\n" * (SIZE // 18),
    "stars": "*" * SIZE,
    "spaces then a marker": " " * SIZE + "[[Final Answer]]",
    "prose then json": "word " * (SIZE // 5) + '{"reason": "r", "guideline": "g"}',
    "unicode": "é日🙂" * (SIZE // 3),
    "newlines": "\n" * SIZE,
}


@pytest.mark.parametrize("parse", PARSERS, ids=lambda parse: parse.__name__)
@pytest.mark.parametrize("name", list(HUGE))
def test_a_200kb_reply_parses_in_well_under_half_a_second(parse, name):
    started = time.perf_counter()
    parse(HUGE[name])
    assert time.perf_counter() - started < 0.5


def test_a_huge_reply_with_valid_json_at_the_end_still_parses():
    assert parse_salam_feedback(HUGE["prose then json"]).ok


@pytest.mark.parametrize("parse", PARSERS, ids=lambda parse: parse.__name__)
def test_random_replies_never_raise(parse):
    alphabet = '{}[]":,\\\n *#/5 4 Answer is Step Incorrect Explanation Correct Solution [[Final Answer]]: reason é'
    rng = random.Random(7)
    for _ in range(300):
        parse("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300))))
