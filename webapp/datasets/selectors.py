"""Reads for datasets: listing with counts and searching problems."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from webapp.datasets.models import Dataset, Problem


def dataset_list() -> QuerySet[Dataset]:
    return Dataset.objects.annotate(
        problem_count=Count("problems"),
        train_count=Count("problems", filter=Q(problems__split="train")),
        test_count=Count("problems", filter=Q(problems__split="test")),
    ).order_by("name")


def problem_search(*, dataset: Dataset, query: str = "", split: str = "", task: str = "") -> QuerySet[Problem]:
    """Problems of ``dataset`` whose question, id or gold answer contains every word of ``query``."""
    problems = dataset.problems.all()
    if split:
        problems = problems.filter(split=split)
    if task:
        problems = problems.filter(task=task)
    for word in query.split()[:10]:
        problems = problems.filter(
            Q(question__icontains=word) | Q(external_id__iexact=word) | Q(gold_answer__iexact=word)
        )
    return problems.order_by("position")


def dataset_tasks(dataset: Dataset) -> list[tuple[str, int]]:
    rows = dataset.problems.values("task").annotate(n=Count("id")).order_by("task")
    return [(row["task"], row["n"]) for row in rows if row["task"]]
