"""The sentence embedder exams use (SALAM retrieval, LbT's similar problems, near-duplicate checks), chosen by a setting.

``ERRATA_EXAM_EMBEDDER`` names a callable that returns an ``Embedder``; the default is the process-wide
all-MiniLM-L6-v2 (loaded once, on first use). Tests point it at a tiny embedder with known vectors.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from pipeline.exams.retrieval import Embedder

DEFAULT_EMBEDDER = "pipeline.exams.retrieval.shared_minilm"


def exam_embedder() -> Embedder:
    return import_string(getattr(settings, "ERRATA_EXAM_EMBEDDER", DEFAULT_EMBEDDER))()
