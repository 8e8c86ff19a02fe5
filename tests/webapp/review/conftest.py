"""Review fixtures: feedback rows written directly (the teacher runs are tested elsewhere), and several annotators."""

from __future__ import annotations

import itertools

import pytest

from pipeline.exports import lema_correction_text
from tests.conftest import PASSWORD
from webapp.datasets.models import Dataset, Problem
from webapp.gather.models import Attempt
from webapp.runs.models import Run
from webapp.teach.models import Feedback

_counter = itertools.count()


def make_feedback(count: int = 1, *, attempt=None, method: str = "lema", teacher: str = "teacher-a", run=None,
                  **fields) -> list[Feedback]:
    """``count`` LEMA corrections, each on a new wrong answer (or on ``attempt``); ``fields`` set model columns."""
    n = next(_counter)
    dataset, _ = Dataset.objects.get_or_create(name="review-tests", defaults={
        "benchmark": "gsm8k", "answer_format": "number", "scorer": "numeric"})
    gather, _ = Run.objects.get_or_create(kind="gather", name="review-tests gather", defaults={"config": {}})
    run = run or Run.objects.create(kind="teach", name=f"teach {n}", config={})
    made = []
    for i in range(count):
        if attempt is None:
            problem = Problem.objects.create(dataset=dataset, external_id=f"p{n}-{i}", position=n * 1000 + i, split="train",
                                             question=f"Tom has {i + 2} apples and buys {i + 3} more. How many?",
                                             gold_answer=str(2 * i + 5), question_hash=f"h{n}-{i}")
            mistake = Attempt.objects.create(run=gather, problem=problem, model_name="student", prompt="[]",
                                             raw_output=f"He has {i + 2} + {i + 3} = {2 * i + 6} apples.",
                                             extracted=str(2 * i + 6), correct=False, scorer="numeric")
        else:
            mistake = attempt
        correction = {"incorrect_step": "the sum", "explanation": "the sum is wrong",
                      "corrected_solution": f"{i + 2} + {i + 3} = {2 * i + 5}", "corrected_answer": str(2 * i + 5)}
        values = {"run": run, "attempt": mistake, "problem": mistake.problem, "method": method, "teacher_name": teacher,
                  "sample_index": Feedback.objects.filter(attempt=mistake, teacher_name=teacher, method=method).count(),
                  "raw_output": "raw", "fields": correction, "text": lema_correction_text(correction),
                  "corrected_answer": correction["corrected_answer"], "auto_check": True} | fields
        made.append(Feedback.objects.create(**values))
    return made


@pytest.fixture
def annotators(db):
    """Three more annotators besides ``annotator``: ann-1, ann-2, ann-3."""
    from webapp.accounts.services import user_create

    return [user_create(username=f"ann-{i}", role="annotator", password=PASSWORD) for i in (1, 2, 3)]
