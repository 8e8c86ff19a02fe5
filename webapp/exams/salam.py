"""SALAM exams: a memory of past cases, the most similar ones for each question, the study assistant's guideline.

The memory is what gather runs recorded on the train split of the examined datasets (SALAM's mistake and
correct collections are queries over those answers): one case per problem and verdict, the earliest.
A question's own problem is never retrieved for it (an exam on the train split would otherwise see its answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipeline.attempts import AttemptRecord
from pipeline.exams.config import ExamConfig
from pipeline.exams.prompts import assistant_messages, guidance_block, parse_guideline
from pipeline.exams.retrieval import PastCase, Retrieved, embedding_text, past_case, retrieve
from pipeline.models import ChatRequest
from webapp.datasets.models import Problem
from webapp.exams.context import ExamContext, ExamLaunchError, active_endpoint, failed
from webapp.exams.embedding import exam_embedder
from webapp.gather.models import Attempt
from webapp.runs.models import RunKind
from webapp.runs.services import run_ask

COLLECTIONS = {"mistakes": "mistakes", "correct": "correct answers", "both": "answers"}


def memory_attempts(dataset_ids: Sequence[int], retrieve_from: str):
    """Gather answers on the train split of these datasets: the mistakes, the correct ones, or both."""
    attempts = Attempt.objects.filter(run__kind=RunKind.GATHER, problem__dataset_id__in=list(dataset_ids),
                                      problem__split="train")
    if retrieve_from in ("mistakes", "correct"):
        attempts = attempts.filter(correct=retrieve_from == "correct")
    return attempts


def salam_check(config: ExamConfig) -> None:
    """Refuse a SALAM exam without its assistant or without anything to retrieve."""
    options = config.salam
    if options.guideline:
        active_endpoint(options.assistant_endpoint_id, "assistant")
    if options.retrieve_from != "none" and not memory_attempts(config.dataset_ids, options.retrieve_from).exists():
        raise ExamLaunchError(
            f"nothing to retrieve: no gather run recorded {COLLECTIONS[options.retrieve_from]} on the train split of "
            "these datasets; gather some first, or set salam.retrieve_from to none (guideline only)")


@dataclass(frozen=True)
class Memory:
    cases: list[PastCase]  # case_id: the attempt's id
    problem_ids: list[int]  # the problem each case is about
    vectors: np.ndarray


def memory_load(config: ExamConfig) -> Memory:
    """The deduplicated memory, embedded (MiniLM keeps the vectors, so resumes do not pay twice in one worker)."""
    if config.salam.retrieve_from == "none":
        return Memory(cases=[], problem_ids=[], vectors=np.zeros((0, 1)))
    rows = (memory_attempts(config.dataset_ids, config.salam.retrieve_from)
            .order_by("problem_id", "correct", "run_id", "round", "sample_index", "id")
            .values_list("pk", "problem_id", "extracted", "correct"))
    kept, seen = [], set()
    for pk, problem_id, extracted, correct in rows.iterator(chunk_size=5000):
        if (problem_id, correct) not in seen:
            seen.add((problem_id, correct))
            kept.append((pk, problem_id, extracted, correct))
    problems = {p.pk: p.as_record() for p in Problem.objects.filter(dataset_id__in=config.dataset_ids, split="train")}
    cases = [past_case(pk, problems[problem_id], AttemptRecord(problems[problem_id].external_id, "", extracted, correct))
             for pk, problem_id, extracted, correct in kept]
    vectors = exam_embedder().encode([case.question for case in cases]) if cases else np.zeros((0, 1))
    return Memory(cases=cases, problem_ids=[row[1] for row in kept], vectors=vectors)


@dataclass(frozen=True)
class Guidance:
    """What one question is shown: the assistant's guideline (and its reply as written) and the retrieved cases."""

    guideline: str = ""
    reply: str = ""
    retrieved: tuple[Retrieved, ...] = ()

    @property
    def cases(self) -> list[PastCase]:
        return [found.case for found in self.retrieved]

    def metadata(self) -> dict:
        return {"guidance": guidance_block(self.guideline, self.cases), "guideline": self.guideline,
                "assistant_reply": self.reply[:4000],
                "retrieved": [{"attempt": found.case.case_id, "score": round(found.score, 4), "correct": found.case.correct}
                              for found in self.retrieved]}


def similar_cases(context: ExamContext, memory: Memory, problems: Sequence[Problem]) -> dict[int, tuple[Retrieved, ...]]:
    options = context.config.salam
    if options.retrieve_from == "none" or not memory.cases:
        return {problem.pk: () for problem in problems}
    queries = exam_embedder().encode([embedding_text(context.record(problem)) for problem in problems])
    found = {}
    for problem, query in zip(problems, queries):
        keep = [i for i, problem_id in enumerate(memory.problem_ids) if problem_id != problem.pk]
        hits = retrieve(query, memory.vectors[keep], [memory.cases[i] for i in keep], top_k=options.top_k,
                        threshold=options.threshold, source=options.retrieve_from)
        found[problem.pk] = tuple(hits)
    return found


def guidance_for(context: ExamContext, memory: Memory, problems: Sequence[Problem], failures: list[str]) -> dict[int, Guidance]:
    """Each question's guidance; a question whose guideline request failed is left out (asked again on a resume)."""
    retrieved = similar_cases(context, memory, problems)
    if not context.config.salam.guideline:
        return {problem.pk: Guidance(retrieved=retrieved[problem.pk]) for problem in problems}
    assistant = active_endpoint(context.config.salam.assistant_endpoint_id, "assistant")
    requests = [ChatRequest(messages=assistant_messages(context.record(problem)), params=dict(context.config.decoding),
                            key=f"assistant:{problem.pk}") for problem in problems]
    results = run_ask(run_id=context.run.pk, endpoint=assistant, requests=requests, use_cache=context.config.use_cache)
    guidance = {}
    for problem, result in zip(problems, results, strict=True):
        if not failed(context, result, f"assistant on problem {problem.external_id}", failures):
            guidance[problem.pk] = Guidance(parse_guideline(result.text), result.text, retrieved[problem.pk])
    return guidance
