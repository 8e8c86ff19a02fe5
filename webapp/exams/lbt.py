"""LbT M1 exams: each teacher rationale is the worked example for the student on related train problems; its LbT
score is how many of those answers are right; MAX, SUM and majority then choose the problem's answer.

A rationale is a parsed ``lbt`` Feedback row of the teacher run. The student's answers are Attempt rows on the
related problems with ``round`` = the rationale's id and ``sample_index`` = the repetition, so a resume asks
only what is missing. The three rules' answers are graded against the exam problem's gold by the first
rationale that gave each (as LbT does); the exam's own answer is MAX's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from django.db.models import Count, Q

from pipeline.exams.config import ExamConfig
from pipeline.exams.prompts import lbt_messages
from pipeline.exams.retrieval import cosine_scores, embedding_text
from pipeline.exams.selection import RULES, ScoredRationale, related_problems, select_all
from pipeline.models import ChatRequest
from pipeline.scoring import score
from webapp.datasets.models import Problem
from webapp.exams.context import ExamContext, ExamLaunchError, answers_upsert, attempt_rows, failed, failure_outcome, report
from webapp.exams.embedding import exam_embedder
from webapp.exams.models import ExamAnswer
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunKind, RunStatus
from webapp.runs.services import run_ask, run_log, run_progress, run_should_stop
from webapp.teach.models import Feedback, Method


def rationales_of(teacher_run_id: int, problem_ids: Sequence[int]):
    return (Feedback.objects.filter(run_id=teacher_run_id, method=Method.LBT, parse_ok=True, problem_id__in=list(problem_ids))
            .defer("prompt").order_by("problem_id", "teacher_name", "sample_index", "id"))


def _pool_sizes(config: ExamConfig) -> dict[int, int]:
    rows = Problem.objects.filter(dataset_id__in=config.dataset_ids, split="train").values("dataset_id").annotate(n=Count("id"))
    return {row["dataset_id"]: row["n"] for row in rows}


def lbt_check(config: ExamConfig, problems: list[Problem]) -> list[Problem]:
    """The problems the teacher run wrote rationales for; ExamLaunchError when there are none or no pool."""
    teacher_run = Run.objects.filter(pk=config.lbt.teacher_run_id).first()
    if teacher_run is None:
        raise ExamLaunchError(f"lbt.teacher_run_id: no run #{config.lbt.teacher_run_id}")
    if teacher_run.kind != RunKind.TEACH or teacher_run.config.get("method") != Method.LBT:
        what = f"a {teacher_run.kind} run"
        if teacher_run.kind == RunKind.TEACH:
            what += f" of {teacher_run.config.get('method')}"
        raise ExamLaunchError(f"lbt.teacher_run_id: run #{teacher_run.pk} is {what}, not an LbT teacher run")
    kept = with_rationales(config, problems)
    if not kept:
        raise ExamLaunchError(f"teacher run #{teacher_run.pk} has no parsed LbT rationales for these {len(problems)} "
                              "problems; run it on the same dataset and split first")
    sizes = _pool_sizes(config)
    for problem in kept:
        if sizes.get(problem.dataset_id, 0) < 2:
            raise ExamLaunchError(f"{problem.dataset.name} has too few train problems to draw related exam problems from")
    return kept


def with_rationales(config: ExamConfig, problems: list[Problem], *, run_id: int | None = None) -> list[Problem]:
    """The problems that have at least one rationale (the others are logged and left out)."""
    having = set(rationales_of(config.lbt.teacher_run_id, [p.pk for p in problems]).values_list("problem_id", flat=True))
    kept = [p for p in problems if p.pk in having]
    if run_id is not None and len(kept) < len(problems):
        run_log(run_id=run_id, message=f"{len(problems) - len(kept)} problems have no rationale in the teacher run "
                                       "and are left out.")
    return kept


def _related_count(config: ExamConfig, pool_size: int) -> int:
    """Related problems per rationale: as many as asked, unless the train pool has fewer (less the problem itself,
    when the exam is on train problems)."""
    return min(config.lbt.exam_problems, max(pool_size - (config.split != "test"), 0))


def lbt_total(config: ExamConfig, problems: list[Problem]) -> int:
    """Answers to ask: rationales x related problems x repetitions."""
    sizes, per_problem = _pool_sizes(config), _rationale_counts(config, problems)
    related = sum(per_problem.get(p.pk, 0) * _related_count(config, sizes.get(p.dataset_id, 0)) for p in problems)
    return related * config.lbt.repetitions


def _rationale_counts(config: ExamConfig, problems: list[Problem]) -> dict[int, int]:
    rows = rationales_of(config.lbt.teacher_run_id, [p.pk for p in problems]).values("problem_id").annotate(n=Count("id"))
    return {row["problem_id"]: row["n"] for row in rows.order_by()}


def lbt_conversations(config: ExamConfig, problems: list[Problem]) -> list[list[dict]]:
    """For the estimate: one conversation per request, each rationale shown before a question of that size."""
    sizes, by_id = _pool_sizes(config), {p.pk: p for p in problems}
    conversations = []
    for feedback in rationales_of(config.lbt.teacher_run_id, list(by_id)):
        problem = by_id[feedback.problem_id]
        record = problem.as_record()
        messages = lbt_messages(record, config.prompt, teaching=record, rationale=feedback.fields.get("rationale", ""),
                                answer=feedback.fields.get("answer", ""))
        conversations += [messages] * _related_count(config, sizes.get(problem.dataset_id, 0))
    return conversations


@dataclass
class Lesson:
    """One exam problem: the teacher's rationales for it, and the related problems each is tested on."""

    problem: Problem
    rationales: list[Feedback]
    related: list[Problem]


def lessons(context: ExamContext) -> list[Lesson]:
    config, options = context.config, context.config.lbt
    by_problem: dict[int, list[Feedback]] = defaultdict(list)
    for feedback in rationales_of(options.teacher_run_id, list(context.problems)):
        by_problem[feedback.problem_id].append(feedback)
    found = []
    for dataset_id in dict.fromkeys(p.dataset_id for p in context.problems.values()):
        exam = [p for p in context.problems.values() if p.dataset_id == dataset_id]
        pool = list(Problem.objects.filter(dataset_id=dataset_id, split="train").select_related("dataset").order_by("position"))
        records = [context.record(p) for p in pool]
        similarity = _similarity(context, exam, records) if options.related_rule == "similar" else {}
        by_external = {p.external_id: p for p in pool}
        for problem in exam:
            chosen = related_problems(context.record(problem), records, rule=options.related_rule, count=options.exam_problems,
                                      similarity=similarity.get(problem.pk), group_key=options.group_key, seed=config.sample_seed)
            found.append(Lesson(problem, by_problem[problem.pk], [by_external[r.external_id] for r in chosen]))
    return found


def _similarity(context: ExamContext, exam: list[Problem], pool: list) -> dict[int, list[float]]:
    embedder = exam_embedder()
    pool_vectors = embedder.encode([embedding_text(record) for record in pool])
    queries = embedder.encode([embedding_text(context.record(problem)) for problem in exam])
    return {problem.pk: cosine_scores(query, pool_vectors).tolist() for problem, query in zip(exam, queries)}


@dataclass(frozen=True)
class LbtItem:
    """One request: a rationale as the worked example before one related problem, for the missing repetitions."""

    lesson: Lesson
    rationale: Feedback
    related: Problem
    repetitions: tuple[int, ...]


def _pending(context: ExamContext, found: list[Lesson]) -> list[LbtItem]:
    done = set(Attempt.objects.filter(run=context.run).values_list("problem_id", "sample_index", "round"))
    work = []
    for lesson in found:
        for rationale in lesson.rationales:
            for related in lesson.related:
                missing = tuple(r for r in range(context.config.lbt.repetitions) if (related.pk, r, rationale.pk) not in done)
                if missing:
                    work.append(LbtItem(lesson, rationale, related, missing))
    return work


def lbt_answer_all(context: ExamContext) -> dict:
    found, failures = lessons(context), []
    reps = context.config.lbt.repetitions
    run_progress(run_id=context.run.pk, total=sum(len(ls.rationales) * len(ls.related) * reps for ls in found))
    work = _pending(context, found)
    for start in range(0, len(work), context.chunk_size):
        if run_should_stop(run_id=context.run.pk):
            run_log(run_id=context.run.pk, message="Cancelled; answers recorded so far are kept.")
            return {"status": RunStatus.CANCELLED}
        chunk = work[start:start + context.chunk_size]
        _ask(context, chunk, failures)
        lbt_answers_save(context, list({id(item.lesson): item.lesson for item in chunk}.values()))
        report(context)
    lbt_answers_save(context, found)
    return failure_outcome(failures)


def _ask(context: ExamContext, chunk: list[LbtItem], failures: list[str]) -> None:
    requests = [ChatRequest(
        messages=lbt_messages(context.record(item.related), context.config.prompt, teaching=context.record(item.lesson.problem),
                              rationale=item.rationale.fields.get("rationale", ""), answer=item.rationale.fields.get("answer", "")),
        params=dict(context.config.decoding), n=len(item.repetitions), sample_index=item.repetitions[0],
        key=f"{item.rationale.pk}:{item.related.pk}") for item in chunk]
    results = run_ask(run_id=context.run.pk, endpoint=context.student, requests=requests, use_cache=context.config.use_cache)
    rows = []
    for item, request, result in zip(chunk, requests, results, strict=True):
        if failed(context, result, f"rationale {item.rationale.pk} on problem {item.related.external_id}", failures):
            continue
        metadata = {"lbt": {"exam_problem": item.lesson.problem.pk, "rationale": item.rationale.pk}}
        rows += attempt_rows(context, item.related, request, result, sample_indexes=item.repetitions,
                             round_number=item.rationale.pk, metadata=metadata)
    Attempt.objects.bulk_create(rows, ignore_conflicts=True)


def lbt_answers_save(context: ExamContext, found: Sequence[Lesson]) -> None:
    """Each lesson's final answer once every rationale has all its answers: scores, the three rules, MAX's answer."""
    ids = [r.pk for lesson in found for r in lesson.rationales]
    tallies = {row["round"]: row for row in Attempt.objects.filter(run=context.run, round__in=ids).values("round")
               .annotate(total=Count("id"), right=Count("id", filter=Q(correct=True))).order_by()}
    rows = []
    for lesson in found:
        out_of = len(lesson.related) * context.config.lbt.repetitions
        scores = [tallies.get(r.pk, {}).get("right", 0) for r in lesson.rationales]
        if lesson.rationales and all(tallies.get(r.pk, {}).get("total", 0) >= out_of for r in lesson.rationales):
            rows.append(_answer(context, lesson, scores, out_of))
    answers_upsert(rows)


def _answer(context: ExamContext, lesson: Lesson, scores: list[int], out_of: int) -> ExamAnswer:
    problem, record = lesson.problem, context.record(lesson.problem)
    verdicts = [score(context.scorer(problem), r.raw_output, record.gold_answer, record.choices).correct
                for r in lesson.rationales]
    chosen = select_all([ScoredRationale(r.fields.get("rationale", ""), r.fields.get("answer", ""), s)
                         for r, s in zip(lesson.rationales, scores)], normalise=str.strip)
    rules = {rule: {"answer": chosen[rule].answer, "correct": verdicts[chosen[rule].rationale_index],
                    "rationale": lesson.rationales[chosen[rule].rationale_index].pk, "rationales": chosen[rule].group.count,
                    "max_score": chosen[rule].group.max_score, "sum_score": chosen[rule].group.sum_score} for rule in RULES}
    details = {"rules": rules, "related": [p.pk for p in lesson.related], "repetitions": context.config.lbt.repetitions,
               "rationales": [{"feedback": r.pk, "teacher": r.teacher_name, "answer": r.fields.get("answer", ""), "score": s,
                               "out_of": out_of, "correct": v} for r, s, v in zip(lesson.rationales, scores, verdicts)]}
    best = chosen["max"]
    return ExamAnswer(run=context.run, problem=problem, answer=best.answer, correct=rules["max"]["correct"],
                      votes=best.group.count, samples=out_of * len(lesson.rationales),
                      guidance=lesson.rationales[best.rationale_index].fields.get("rationale", ""), lbt=details,
                      contamination=context.contamination.get(problem.pk, []), excluded=context.excluded(problem.pk))
