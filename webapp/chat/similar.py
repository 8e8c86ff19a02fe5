"""Similar approved past mistakes for "explain my mistake": SALAM's retrieval over what reviewers approved.

The memory is every wrong answer that has SALAM or LEMA feedback approved by review (the majority rule of
``webapp.review.selectors.approved_feedback``), newest queues first, at most ``ERRATA_CHAT_SIMILAR_POOL``
cases. Questions are embedded with all-MiniLM-L6-v2 (``ERRATA_CHAT_EMBEDDER`` names another embedder
factory: tests use a tiny one) and the ``ERRATA_CHAT_SIMILAR_TOP_K`` most similar at or above
``ERRATA_CHAT_SIMILAR_THRESHOLD`` are cited.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils.module_loading import import_string

from pipeline.chat import CitedCase
from pipeline.exams.retrieval import Embedder, EmbedderUnavailable, past_case, retrieve
from webapp.review.models import ReviewQueue
from webapp.review.selectors import approved_feedback
from webapp.teach.models import Feedback, Method

log = logging.getLogger(__name__)
METHODS = (Method.SALAM, Method.LEMA)
DEFAULT_EMBEDDER = "pipeline.exams.retrieval.shared_minilm"


def chat_embedder() -> Embedder:
    return import_string(getattr(settings, "ERRATA_CHAT_EMBEDDER", DEFAULT_EMBEDDER))()


def approved_mistakes(limit: int) -> list[tuple[Feedback, str]]:
    """(feedback, approved text) on distinct wrong answers, SALAM and LEMA only, newest queues first."""
    chosen: dict[int, tuple[Feedback, str]] = {}
    for queue in ReviewQueue.objects.filter(reviews__feedback__method__in=METHODS).distinct().order_by("-created_at"):
        for feedback, text in approved_feedback(queue=queue):
            if feedback.method in METHODS and feedback.attempt_id and feedback.attempt_id not in chosen:
                chosen[feedback.attempt_id] = (feedback, text)
                if len(chosen) >= limit:
                    return list(chosen.values())
    return list(chosen.values())


def similar_mistakes(question: str) -> list[CitedCase]:
    """The approved past mistakes most like ``question``, most similar first ([] when none is close enough)."""
    top_k = settings.ERRATA_CHAT_SIMILAR_TOP_K
    pool = approved_mistakes(settings.ERRATA_CHAT_SIMILAR_POOL) if top_k else []
    if not pool:
        return []
    cases = [past_case(f.pk, f.problem.as_record(), f.attempt.as_record()) for f, _ in pool]
    texts = {f.pk: text for f, text in pool}
    try:
        embedder = chat_embedder()
        vectors = embedder.encode([case.question for case in cases])
        query = embedder.encode([question])
    except EmbedderUnavailable as error:
        log.warning("no similar mistakes cited: %s", error)
        return []
    hits = retrieve(query, vectors, cases, top_k=top_k, threshold=settings.ERRATA_CHAT_SIMILAR_THRESHOLD)
    return [CitedCase(case=hit.case, feedback=texts[hit.case.case_id], score=hit.score) for hit in hits]
