"""The contamination guard: exam problems that also appear in the training data of the checkpoint being examined.

When the student endpoint serves a trained checkpoint, every training set its training runs used is read;
each example's question (its problem's, else its first user message) is compared with each exam question,
exactly always and by embedding when near duplicates are asked for (`pipeline.exams.contamination`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pipeline.exams.contamination import find_contamination
from pipeline.exams.retrieval import EmbedderUnavailable
from webapp.datasets.models import Problem
from webapp.exams.embedding import exam_embedder
from webapp.runs.models import RunEvent
from webapp.runs.services import run_log
from webapp.train.models import Checkpoint, TrainingExample


def examined_training_sets(student_id: int) -> dict[int, Checkpoint]:
    """Training set id -> a checkpoint trained on it, for every checkpoint served as this endpoint."""
    sets: dict[int, Checkpoint] = {}
    for checkpoint in Checkpoint.objects.filter(endpoint_id=student_id).select_related("run").order_by("id"):
        set_id = checkpoint.run.config.get("training_set")
        if isinstance(set_id, int):
            sets.setdefault(set_id, checkpoint)
    return sets


def example_question(data: dict, problem_question: str | None) -> str:
    """What an example asks: its problem's question when it came from one, else its first user message."""
    if problem_question:
        return problem_question
    messages = data.get("messages") or data.get("prompt") or []
    if isinstance(messages, str):
        return messages
    return next((str(m.get("content", "")) for m in messages if isinstance(m, dict) and m.get("role") == "user"), "")


def training_questions(set_ids: Iterable[int]) -> Iterator[tuple[tuple[int, int], str]]:
    """((example id, set id), question) for every example of these sets, read in chunks."""
    rows = (TrainingExample.objects.filter(training_set_id__in=list(set_ids)).order_by("id")
            .values_list("pk", "training_set_id", "feedback__problem__question", "attempt__problem__question", "data"))
    for pk, set_id, from_feedback, from_attempt, data in rows.iterator(chunk_size=2000):
        yield (pk, set_id), example_question(data or {}, from_feedback or from_attempt)


def contamination_check(*, run_id: int, student_id: int, problems: Iterable[Problem], near: bool) -> dict[int, list[dict]]:
    """Problem id -> its matches [{example, training_set, kind, score}], for the flagged problems only."""
    sets = examined_training_sets(student_id)
    if not sets:
        run_log(run_id=run_id, message="Contamination guard: the student is not a trained checkpoint; nothing to check.")
        return {}
    training = list(training_questions(sets))
    exam = [(problem.pk, problem.question) for problem in problems]
    found = None
    if near:
        try:
            found = find_contamination(exam, training, embedder=exam_embedder())
        except EmbedderUnavailable as error:
            run_log(run_id=run_id, level=RunEvent.Level.WARNING,
                    message=f"Contamination guard: no near-duplicate check ({error}); exact copies only.")
    if found is None:
        found = find_contamination(exam, training)
    run_log(run_id=run_id, message=f"Contamination guard: {len(found)} of {len(exam)} problems match the "
                                   f"{len(training)} training examples of {len(sets)} training set(s).")
    return {problem_id: [{"example": match.training_id[0], "training_set": match.training_id[1], "kind": match.kind,
                          "score": round(match.score, 4)} for match in matches]
            for problem_id, matches in found.items()}
