"""What one execution of an exam run works with: its config, problems, student and pools, and the row writers
every mode shares (attempts from replies, failures, progress)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

from django.db.models import Count, Q

from pipeline.benchmarks.records import ProblemRecord
from pipeline.exams.config import ExamConfig, parse_exam_config
from pipeline.gather import sample_problem_ids
from pipeline.models import ChatRequest, ChatResult
from pipeline.prompts import choose_shots
from pipeline.scoring import score
from webapp.datasets.models import Problem
from webapp.endpoints.models import ModelEndpoint
from webapp.exams.models import ExamAnswer
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunEvent, RunStatus
from webapp.runs.services import run_log, run_progress


class ExamLaunchError(ValueError):
    """An exam that cannot be launched; the message says which setting and why."""


def active_endpoint(endpoint_id: int | None, role: str) -> ModelEndpoint:
    """The active endpoint that will play ``role``; ExamLaunchError naming the problem otherwise."""
    endpoint = ModelEndpoint.objects.filter(pk=endpoint_id, is_active=True).first()
    if endpoint is None:
        raise ExamLaunchError(f"no active model endpoint #{endpoint_id} for the {role}")
    if role not in endpoint.roles:
        raise ExamLaunchError(f"{endpoint.name} may not play the {role} (its roles: {', '.join(endpoint.roles)})")
    return endpoint


# Run settings kept beside the exam config (the guard's, not the exam's), with their defaults.
GUARD_SETTINGS = {"near_duplicates": True}


def exam_config(run_config: dict) -> ExamConfig:
    """The ExamConfig of a stored run, its guard settings set aside."""
    return parse_exam_config({key: value for key, value in run_config.items() if key not in GUARD_SETTINGS})


def selected_problems(config: ExamConfig) -> list[Problem]:
    """The problems an exam asks: each dataset's split and tasks, then one seeded sample over all of them;
    in the order the datasets were given, then dataset order."""
    order = {dataset_id: index for index, dataset_id in enumerate(config.dataset_ids)}
    problems = Problem.objects.filter(dataset_id__in=config.dataset_ids).select_related("dataset")
    if config.split != "all":
        problems = problems.filter(split=config.split)
    if config.tasks:
        problems = problems.filter(task__in=config.tasks)
    problems = sorted(problems, key=lambda p: (order[p.dataset_id], p.position))
    keys = [f"{p.dataset_id}:{p.external_id}" for p in problems]
    chosen = set(sample_problem_ids(keys, size=config.sample_size, seed=config.sample_seed))
    return [problem for problem, key in zip(problems, keys) if key in chosen]


def train_pool(dataset_id: int) -> list[ProblemRecord]:
    """A dataset's train split: few-shot examples and LbT's related problems come from it."""
    return [p.as_record() for p in Problem.objects.filter(dataset_id=dataset_id, split="train").order_by("position")]


@dataclass
class ExamContext:
    """One execution of an exam run: loaded once, shared by the modes."""

    run: Run
    config: ExamConfig
    near_duplicates: bool
    problems: dict[int, Problem]  # exam order
    student: ModelEndpoint
    contamination: dict[int, list[dict]] = field(default_factory=dict)
    _pools: dict[int, list[ProblemRecord]] = field(default_factory=dict)
    _records: dict[int, ProblemRecord] = field(default_factory=dict)

    def record(self, problem: Problem) -> ProblemRecord:
        if problem.pk not in self._records:
            self._records[problem.pk] = problem.as_record()
        return self._records[problem.pk]

    def pool(self, dataset_id: int) -> list[ProblemRecord]:
        if dataset_id not in self._pools:
            self._pools[dataset_id] = train_pool(dataset_id)
        return self._pools[dataset_id]

    def shots(self, problem: Problem) -> list[ProblemRecord]:
        """Few-shot worked examples from the problem's train split (none for the other styles)."""
        if self.config.prompt.style != "few_shot":
            return []
        return choose_shots(self.record(problem), self.pool(problem.dataset_id), self.config.prompt)

    def scorer(self, problem: Problem) -> str:
        return self.config.scorer or problem.dataset.scorer

    def excluded(self, problem_id: int) -> bool:
        return self.config.exclude_contaminated and bool(self.contamination.get(problem_id))

    @property
    def chunk_size(self) -> int:
        return max(4 * self.student.max_concurrency, 16)


def load_context(run: Run, problems: Sequence[Problem]) -> ExamContext:
    config = exam_config(run.config)
    return ExamContext(run=run, config=config, near_duplicates=bool(run.config.get("near_duplicates", True)),
                       problems={p.pk: p for p in problems}, student=ModelEndpoint.objects.get(pk=config.student_endpoint_id))


def attempt_rows(context: ExamContext, problem: Problem, request: ChatRequest, result: ChatResult, *,
                 sample_indexes: Sequence[int], round_number: int = 0, metadata: dict | None = None) -> list[Attempt]:
    """The scored Attempt rows of one answered request (one per sample)."""
    record, scorer = context.record(problem), context.scorer(problem)
    prompt = json.dumps(list(request.messages), ensure_ascii=False)
    rows = []
    for sample_index, text in zip(sample_indexes, result.texts):
        verdict = score(scorer, text, record.gold_answer, record.choices)
        rows.append(Attempt(
            run=context.run, problem=problem, endpoint=context.student, model_name=context.student.model_name,
            sample_index=sample_index, round=round_number, prompt=prompt, raw_output=text, extracted=verdict.extracted,
            correct=verdict.correct, scorer=scorer, prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens // max(len(result.texts), 1),
            latency_ms=round(result.latency_s * 1000), metadata=metadata or {}))
    return rows


def failed(context: ExamContext, result: ChatResult, what: str, failures: list[str]) -> bool:
    """True (logged and counted) when the request failed; its work stays to be asked on a resume."""
    if result.ok:
        return False
    failures.append(result.error or "no answer")
    run_log(run_id=context.run.pk, level=RunEvent.Level.WARNING, message=f"{what}: {result.error}")
    return True


def failure_outcome(failures: list[str]) -> dict:
    if not failures:
        return {"status": RunStatus.SUCCEEDED}
    return {"status": RunStatus.FAILED, "error": (
        f"{len(failures)} requests failed and were not recorded (last reason: {failures[-1]}). "
        "Resume the run to ask for them again; the answers already recorded are kept.")}


ANSWER_FIELDS = ["attempt", "answer", "correct", "votes", "samples", "guidance", "retrieved", "lbt", "contamination",
                 "excluded"]


def answers_upsert(rows: Sequence[ExamAnswer]) -> None:
    """Insert or replace final answers (one per run and problem): recomputing them changes nothing twice."""
    ExamAnswer.objects.bulk_create(rows, update_conflicts=True, unique_fields=["run", "problem"],
                                   update_fields=ANSWER_FIELDS)


def report(context: ExamContext) -> None:
    """Progress (answers recorded) and the running results, from what is stored (a resumed run reports the truth)."""
    answers = ExamAnswer.objects.filter(run=context.run)
    counted = answers.aggregate(all=Count("id"), left_out=Count("id", filter=Q(excluded=True)),
                                flagged=Count("id", filter=~Q(contamination=[])),
                                right=Count("id", filter=Q(correct=True, excluded=False)))
    tally = {"answered": counted["all"], "excluded": counted["left_out"], "contaminated": counted["flagged"],
             "correct": counted["right"], "scored": counted["all"] - counted["left_out"]}
    if context.config.mode == "lbt":
        scored = answers.filter(excluded=False).values_list("lbt", flat=True)
        tally["lbt"] = {rule: sum(bool(lbt.get("rules", {}).get(rule, {}).get("correct")) for lbt in scored)
                        for rule in ("max", "sum", "majority")}
    run_progress(run_id=context.run.pk, done=Attempt.objects.filter(run=context.run).count(), counts=tally)
