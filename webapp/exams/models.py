"""ExamAnswer: an exam run's final answer on one problem, with what the student was shown and the guard's verdict.

The samples behind it are Attempt rows of the exam run (``webapp.gather.models.Attempt``): plain and SALAM
samples are attempts on the exam problem itself (round 0); LbT's are attempts on the related problems, one
round per teacher rationale (``round`` is the rationale's Feedback id), with the details in their metadata.
"""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from webapp.datasets.models import Problem
from webapp.gather.models import Attempt
from webapp.runs.models import Run


class ExamAnswer(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="exam_answers")
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="exam_answers")
    attempt = models.ForeignKey(Attempt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                help_text="The sample the final answer was taken from (plain and SALAM).")
    answer = models.TextField(null=True, blank=True, help_text="The final answer: the majority vote, or LbT's MAX.")
    correct = models.BooleanField()
    votes = models.PositiveIntegerField(default=0, help_text="Samples (LbT: rationales) that gave the final answer.")
    samples = models.PositiveIntegerField(default=0, help_text="Samples behind it (LbT: answers on related problems).")
    guidance = models.TextField(blank=True, help_text="What was put before the question (SALAM), or LbT's best rationale.")
    retrieved = models.JSONField(default=list, blank=True,
                                 help_text="SALAM: the past cases shown, [{attempt, score, correct}], most similar first.")
    lbt = models.JSONField(default=dict, blank=True,
                           help_text="LbT: each rule's answer and correctness, each rationale's score, the related problems.")
    contamination = models.JSONField(default=list, blank=True,
                                     help_text="Training examples this problem matches: [{example, training_set, kind, score}].")
    excluded = models.BooleanField(default=False, help_text="Left out of the results (contaminated, and the exam said so).")

    class Meta:
        ordering = ["run", "problem_id"]
        constraints = [models.UniqueConstraint(fields=["run", "problem"], name="exam_answer_unique_per_run")]
        indexes = [models.Index(fields=["run", "excluded", "correct"])]

    def __str__(self) -> str:
        return f"exam answer on {self.problem_id} in run {self.run_id} ({'right' if self.correct else 'wrong'})"

    def get_absolute_url(self) -> str:
        return reverse("exams:trace", args=[self.pk])

    @property
    def contaminated(self) -> bool:
        return bool(self.contamination)
