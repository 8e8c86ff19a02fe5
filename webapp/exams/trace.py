"""The chain behind one exam answer: its samples, the student, the checkpoint and its training run, the training
examples that touch this problem, and for each its reviews, feedback, mistake and problem. Every read is bounded."""

from __future__ import annotations

from django.db.models import Q

from webapp.endpoints.models import ModelEndpoint
from webapp.exams.models import ExamAnswer
from webapp.gather.models import Attempt
from webapp.review.models import Review
from webapp.teach.models import Feedback
from webapp.train.models import Checkpoint, TrainingExample, TrainingSet

SAMPLES_SHOWN, CHECKPOINTS_SHOWN, EXAMPLES_SHOWN, FIRST_EXAMPLES = 20, 5, 10, 3


def answer_trace(answer: ExamAnswer) -> dict:
    """Everything the trace page shows for ``answer``."""
    student = ModelEndpoint.objects.filter(pk=answer.run.config.get("student_endpoint_id")).first()
    cases = _cases(answer)
    checkpoints = []
    if student is not None:
        checkpoints = list(Checkpoint.objects.filter(endpoint=student).select_related("run").order_by("-id")[:CHECKPOINTS_SHOWN])
    case_problems = {case["attempt"].problem_id for case in cases}
    return {"answer": answer, "student": student, "samples": _samples(answer), "cases": cases,
            "rationales": _rationales(answer), "chain": [_chain(answer, c, case_problems) for c in checkpoints]}


def _samples(answer: ExamAnswer) -> list[Attempt]:
    attempts = Attempt.objects.filter(run=answer.run).select_related("problem").defer("prompt")
    if answer.lbt:
        rationale_ids = [r["feedback"] for r in answer.lbt.get("rationales", [])]
        return list(attempts.filter(round__in=rationale_ids).order_by("round", "problem_id", "sample_index")[:SAMPLES_SHOWN])
    return list(attempts.filter(problem=answer.problem, round=0).order_by("sample_index")[:SAMPLES_SHOWN])


def _cases(answer: ExamAnswer) -> list[dict]:
    """SALAM: the past cases the student was shown, with their similarity."""
    scores = {case["attempt"]: case["score"] for case in answer.retrieved}
    found = Attempt.objects.select_related("problem", "run").defer("prompt").in_bulk(list(scores))
    return [{"attempt": found[pk], "score": score} for pk, score in scores.items() if pk in found]


def _rationales(answer: ExamAnswer) -> list[dict]:
    """LbT: each teacher rationale with its score, best first."""
    scored = answer.lbt.get("rationales", []) if answer.lbt else []
    found = Feedback.objects.defer("prompt").in_bulk([r["feedback"] for r in scored])
    rows = [{**r, "row": found[r["feedback"]]} for r in scored if r["feedback"] in found]
    return sorted(rows, key=lambda r: -r["score"])


def _chain(answer: ExamAnswer, checkpoint: Checkpoint, case_problems: set[int]) -> dict:
    """One checkpoint behind the student: its training run and set, and the examples worth following."""
    training_set = TrainingSet.objects.filter(pk=checkpoint.run.config.get("training_set")).first()
    link = {"checkpoint": checkpoint, "training_run": checkpoint.run, "training_set": training_set, "examples": []}
    if training_set is None:
        return link
    matches = {m["example"]: m for m in answer.contamination if m.get("training_set") == training_set.pk}
    examples = (TrainingExample.objects.filter(training_set=training_set)
                .select_related("feedback", "feedback__problem", "feedback__attempt", "attempt", "attempt__problem")
                .defer("feedback__prompt", "feedback__attempt__prompt", "attempt__prompt").order_by("position"))
    problems = {answer.problem_id, *case_problems}
    touching = list(examples.filter(Q(pk__in=list(matches)) | Q(feedback__problem_id__in=problems)
                                    | Q(attempt__problem_id__in=problems))[:EXAMPLES_SHOWN])
    first = list(examples.exclude(pk__in=[e.pk for e in touching])[:FIRST_EXAMPLES])
    reviews = Review.objects.select_related("annotator", "queue").in_bulk(
        [pk for e in touching + first for pk in e.reviews if isinstance(pk, int)])
    link["examples"] = [_example(e, answer, matches, case_problems, reviews) for e in touching + first]
    return link


def _example(example: TrainingExample, answer: ExamAnswer, matches: dict, case_problems: set[int], reviews: dict) -> dict:
    feedback = example.feedback
    problem = feedback.problem if feedback else (example.attempt.problem if example.attempt else None)
    mistake = feedback.attempt if feedback and feedback.attempt_id else example.attempt
    return {"example": example, "why": _why(example, problem, answer, matches, case_problems), "feedback": feedback,
            "mistake": mistake, "problem": problem, "reviews": [reviews[pk] for pk in example.reviews if pk in reviews]}


def _why(example: TrainingExample, problem, answer: ExamAnswer, matches: dict, case_problems: set[int]) -> str:
    match = matches.get(example.pk)
    if match and match["kind"] == "exact":
        return "the same question, word for word (contamination)"
    if match:
        return f"a near duplicate of this question (cosine {match['score']:.2f})"
    if problem is not None and problem.pk == answer.problem_id:
        return "trained on this very problem"
    if problem is not None and problem.pk in case_problems:
        return "a past case shown to the student for this question"
    return "one of the first examples of the set"
