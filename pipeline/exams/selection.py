"""LbT M1: choose a problem's answer from teacher rationales by their LbT scores (MAX, SUM, majority), and
pick the related exam problems each rationale is tested on.

The rules follow LbT's ``scripts/math/search_rationale.py`` (imagination-research/lbt):
rationales are grouped by answer; each group keeps its count, the max and the sum of its rationales'
LbT scores; the winner is the last group, in first-seen order, of those with the greatest
(statistic, count) pair, because LbT takes ``sorted(groups, key=(statistic, count))[-1]`` and Python's
sort is stable. So a tie on the statistic goes to the answer more rationales gave, and a tie on both to
the answer seen *last*. Majority ("MAJ" there) is the same with the count as the statistic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Union

from pipeline.benchmarks.records import ProblemRecord

RULES = ("max", "sum", "majority")
RELATED_RULES = ("similar", "same_task", "same_group")
Score = Union[int, float]  # whole counts (LbT's own: right exam answers) keep sums exact; floats may round


@dataclass(frozen=True)
class ScoredRationale:
    """A teaching rationale (TR), its answer (TA) and its LbT score: the student's exam score when this
    rationale was the in-context example (LbT sums right answers over exam problems x repetitions)."""

    rationale: str
    answer: str
    score: Score


@dataclass(frozen=True)
class AnswerGroup:
    """The rationales that gave one answer: the answer as first written, where it was first seen, the tally."""

    answer: str
    first_index: int
    count: int
    max_score: Score
    sum_score: Score


@dataclass(frozen=True)
class Selection:
    """The answer a rule chose and the first rationale that gave it (the one LbT grades against gold)."""

    rule: str
    answer: str
    rationale_index: int
    group: AnswerGroup


def answer_groups(rationales: Sequence[ScoredRationale], *, normalise: Callable[[str], Hashable] | None = None,
                  equivalent: Callable[[str, str], bool] | None = None) -> list[AnswerGroup]:
    """Group the rationales by answer, in first-seen order.

    Answers are the same when ``normalise`` gives equal keys, or when ``equivalent(first form, answer)``
    holds (checked against each group's first form, in order); with neither, when the strings are equal,
    as in LbT, whose groups are dict keys. Pass the benchmark's normaliser or equivalence check.
    """
    if normalise is not None and equivalent is not None:
        raise ValueError("pass normalise or equivalent, not both")
    keys: list[Hashable] = []
    members: list[list[int]] = []
    for index, item in enumerate(rationales):
        slot = _find_group(item.answer, keys, rationales, members, normalise, equivalent)
        if slot is None:
            keys.append(normalise(item.answer) if normalise else item.answer)
            members.append([index])
        else:
            members[slot].append(index)
    return [_group(rationales, indexes) for indexes in members]


def _find_group(answer: str, keys: list[Hashable], rationales: Sequence[ScoredRationale], members: list[list[int]],
                normalise: Callable[[str], Hashable] | None, equivalent: Callable[[str, str], bool] | None) -> int | None:
    if equivalent is not None:
        return next((slot for slot, indexes in enumerate(members)
                     if equivalent(rationales[indexes[0]].answer, answer)), None)
    key = normalise(answer) if normalise else answer
    return keys.index(key) if key in keys else None


def _group(rationales: Sequence[ScoredRationale], indexes: list[int]) -> AnswerGroup:
    scores = [rationales[i].score for i in indexes]
    return AnswerGroup(rationales[indexes[0]].answer, indexes[0], len(indexes), max(scores), sum(scores))


_RULE_KEYS: dict[str, Callable[[AnswerGroup], tuple]] = {
    "max": lambda g: (g.max_score, g.count),
    "sum": lambda g: (g.sum_score, g.count),
    "majority": lambda g: (g.count, g.count),
}


def select_answer(rationales: Sequence[ScoredRationale], rule: str, *,
                  normalise: Callable[[str], Hashable] | None = None,
                  equivalent: Callable[[str, str], bool] | None = None) -> Selection:
    """The answer ``rule`` chooses: "max" (the best-scored rationale's), "sum" (the answer whose rationales'
    scores add up highest) or "majority" (the most frequent answer, LbT's baseline); ties as LbT breaks them."""
    if rule not in _RULE_KEYS:
        raise ValueError(f"unknown LbT selection rule {rule!r}; known: {', '.join(RULES)}")
    groups = answer_groups(rationales, normalise=normalise, equivalent=equivalent)
    if not groups:
        raise ValueError("LbT selection needs at least one scored rationale")
    key = _RULE_KEYS[rule]
    winner = groups[0]
    for group in groups[1:]:
        if key(group) >= key(winner):  # >=: of equal keys the later group wins, as sorted(...)[-1] does
            winner = group
    return Selection(rule, winner.answer, winner.first_index, winner)


def select_all(rationales: Sequence[ScoredRationale], *, normalise: Callable[[str], Hashable] | None = None,
               equivalent: Callable[[str, str], bool] | None = None) -> dict[str, Selection]:
    """Every rule's choice, to report MAX, SUM and majority side by side."""
    return {rule: select_answer(rationales, rule, normalise=normalise, equivalent=equivalent) for rule in RULES}


# --- related exam problems ---------------------------------------------------------------------------

def related_problems(teaching: ProblemRecord, pool: Sequence[ProblemRecord], *, rule: str, count: int,
                     similarity: Sequence[float] | None = None, group_key: str = "", seed: int = 0
                     ) -> list[ProblemRecord]:
    """The ``count`` exam problems (EPs) a rationale for ``teaching`` is tested on; never the problem itself.

    - "similar": the most similar by ``similarity`` (one score per pool problem, e.g. MiniLM cosine from
      `pipeline.exams.retrieval.cosine_scores`); ties keep pool order. LbT's "ques_similarity" exam maker.
    - "same_group": problems whose ``metadata[group_key]`` equals the teaching problem's, in pool order.
      LbT's "func" exam maker (MATH() snapshots sharing a ``unique_id``).
    - "same_task": problems of the same task, drawn by a hash of (seed, teaching id, candidate id), so the
      draw does not depend on pool order.
    Fewer than ``count`` come back when the pool has fewer.
    """
    if rule not in RELATED_RULES:
        raise ValueError(f"unknown related-problem rule {rule!r}; known: {', '.join(RELATED_RULES)}")
    if similarity is not None and len(similarity) != len(pool):
        raise ValueError(f"similarity has {len(similarity)} scores for {len(pool)} pool problems")
    others = [i for i, p in enumerate(pool) if p.external_id != teaching.external_id
              and p.question.strip() != teaching.question.strip()]
    if rule == "similar":
        if similarity is None:
            raise ValueError("the similar rule needs a similarity score for every pool problem")
        others.sort(key=lambda i: -similarity[i])
    elif rule == "same_group":
        if not group_key or group_key not in teaching.metadata:
            raise ValueError(f"the same_group rule needs a group_key that problem {teaching.external_id!r} has "
                             f"in its metadata, got {group_key!r}")
        others = [i for i in others if pool[i].metadata.get(group_key) == teaching.metadata[group_key]]
    else:
        others = [i for i in others if pool[i].task == teaching.task]
        others.sort(key=lambda i: hashlib.sha256(
            f"{seed}\x00{teaching.external_id}\x00{pool[i].external_id}".encode()).digest())
    return [pool[i] for i in others[:count]]
