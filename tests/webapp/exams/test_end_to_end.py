"""Exams end to end on CPU: a baseline exam of a tiny student, training on its corrected mistakes, a second exam,
and the comparison page, whose statistics must equal values computed here independently.

Everything is real: the model server, a default worker and a gpu worker, the training run, the adapter served
at runtime. The student cannot know the made-up answers before training; its corrected mistakes (each wrong
answer revised with a teacher's help, as GSI's teacher-help round does) teach it.
"""

from __future__ import annotations

import math

import pytest
from django.urls import reverse

from pipeline.benchmarks.records import ProblemRecord
from pipeline.training.config import PRESETS
from tests.webapp.loop import WORDS, errata_loop, local_model, served_checkpoint
from webapp.datasets.services import problems_add
from webapp.exams.models import ExamAnswer
from webapp.exams.services import exam_launch
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunStatus
from webapp.train.runs import train_launch
from webapp.train.sets import training_set_from_gather

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def corrected_mistakes(exam: Run) -> Run:
    """The student's wrong exam answers, each revised after a teacher's help: a gather run of right answers."""
    revisions = Run.objects.create(kind="gather", name="corrected mistakes", status="succeeded",
                                   config={"prompt": exam.config.get("prompt", {})})
    for answer in ExamAnswer.objects.filter(run=exam, correct=False).select_related("problem"):
        Attempt.objects.create(run=revisions, problem=answer.problem, model_name="student", prompt="[]", round=1,
                               guidance="teacher_help", raw_output=f"The answer is {answer.problem.gold_answer}.",
                               extracted=answer.problem.gold_answer, correct=True, scorer="text")
    return revisions


def mcnemar_exact(fixed: int, broken: int) -> float:
    n, k = fixed + broken, min(fixed, broken)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0


def test_training_on_corrected_mistakes_shows_on_the_comparison_page(researcher, researcher_client, tmp_path):
    from tests.gpu_worker.tiny import build_tiny_model

    records = [ProblemRecord(external_id=str(i), question=f"Q{i}?", gold_answer=word, split="test", task=f"t{i % 3}")
               for i, word in enumerate(WORDS)]
    dataset, _ = problems_add(name="words", benchmark="bbh", answer_format="text", records=records)
    dataset.scorer = "text"
    dataset.save(update_fields=["scorer"])
    model_dir = build_tiny_model(tmp_path / "tiny")
    with errata_loop(tmp_path, model_dir) as loop:
        base = local_model(loop, "tiny", str(model_dir))
        exam = {"dataset_ids": [dataset.pk], "mode": "plain", "split": "test", "near_duplicates": False,
                "decoding": {"max_tokens": 24, "temperature": 0}}
        before = loop.finished(exam_launch(user=researcher, data={**exam, "student_endpoint_id": base.pk}), timeout=120)
        assert before.status == RunStatus.SUCCEEDED, before.error
        training_set = training_set_from_gather(name="corrections", run=corrected_mistakes(before), validation_share=0)
        config = {**PRESETS["cpu-lora-tiny"], "max_length": 384, "max_steps": 300, "torch_threads": 1}
        train = loop.finished(train_launch(user=researcher, training_set=training_set, base=base, config=config),
                              timeout=300)
        assert train.status == RunStatus.SUCCEEDED, train.error or loop.logs()
        checkpoint = served_checkpoint(train)
        after = loop.finished(exam_launch(user=researcher, data={**exam, "student_endpoint_id": checkpoint.endpoint_id}),
                              timeout=120)
        assert after.status == RunStatus.SUCCEEDED, after.error

    right_before = dict(ExamAnswer.objects.filter(run=before).values_list("problem_id", "correct"))
    right_after = dict(ExamAnswer.objects.filter(run=after).values_list("problem_id", "correct"))
    assert len(right_before) == len(right_after) == 30
    # 300 steps teach the tiny model about half of its corrections behind the exam's long prompt (12 of 30 here)
    assert sum(right_before.values()) <= 3 and sum(right_after.values()) >= sum(right_before.values()) + 8
    fixed = sum(not right_before[p] and right_after[p] for p in right_before)
    broken = sum(right_before[p] and not right_after[p] for p in right_before)
    # every exam question is in the checkpoint's training set: the guard says so on the second exam
    assert all(answer.contamination for answer in ExamAnswer.objects.filter(run=after))

    page = researcher_client.get(reverse("exams:compare"), {"before": before.pk, "after": after.pk})
    assert page.status_code == 200
    text = page.content.decode()
    difference = (sum(right_after.values()) - sum(right_before.values())) / 30
    still_wrong = sum(not right_before[p] and not right_after[p] for p in right_before)
    assert f"({100 * difference:+.1f} points" in text
    assert f"{fixed} fixed, {broken} broken, {still_wrong} still wrong" in text
    p_value = mcnemar_exact(fixed, broken)
    verdict = "a significant improvement" if p_value < 0.05 else "not significant"
    assert f"p = {p_value:.3g}, {verdict} at the 5% level" in text
