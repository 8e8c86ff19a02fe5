"""Reads for gather: the mistakes browser's filters and search, attempts on one problem, per-task accuracy."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from webapp.gather.models import Attempt


@dataclass(frozen=True)
class AttemptFilter:
    dataset: int | None = None
    task: str = ""
    run: int | None = None
    endpoint: int | None = None
    guidance: str | None = None  # None: any; "": plain pass only
    correct: bool | None = None  # False: the mistake collection; True: the correct collection
    query: str = ""

    @classmethod
    def from_params(cls, params) -> "AttemptFilter":
        def number(name: str) -> int | None:
            value = params.get(name, "")
            return int(value) if value.isdigit() else None

        verdict = params.get("correct", "")
        guidance = params.get("guidance")
        return cls(
            dataset=number("dataset"), task=params.get("task", ""), run=number("run"), endpoint=number("model"),
            guidance=None if guidance in (None, "any") else guidance,
            correct={"yes": True, "no": False}.get(verdict), query=params.get("q", "").strip(),
        )


def attempt_search(spec: AttemptFilter) -> QuerySet[Attempt]:
    """Attempts matching every given filter; collections are these queries, never copies."""
    attempts = Attempt.objects.select_related("problem", "problem__dataset", "run", "endpoint")
    exact = {"problem__dataset_id": spec.dataset, "run_id": spec.run, "endpoint_id": spec.endpoint,
             "correct": spec.correct, "guidance": spec.guidance}
    attempts = attempts.filter(**{field: value for field, value in exact.items() if value is not None})
    if spec.task:
        attempts = attempts.filter(problem__task=spec.task)
    for word in spec.query.split()[:10]:
        attempts = attempts.filter(Q(problem__question__icontains=word) | Q(raw_output__icontains=word))
    return attempts.order_by("-run_id", "problem__position", "round", "sample_index")


def mistakes(**filters) -> QuerySet[Attempt]:
    return attempt_search(AttemptFilter(correct=False, **filters))


def per_task_accuracy(run_id: int) -> list[dict]:
    rows = (Attempt.objects.filter(run_id=run_id).values("problem__task")
            .annotate(total=Count("id"), right=Count("id", filter=Q(correct=True))).order_by("problem__task"))
    return [{"task": row["problem__task"] or "—", "right": row["right"], "total": row["total"],
             "percent": round(100 * row["right"] / row["total"], 1)} for row in rows]
