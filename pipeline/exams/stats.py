"""Exam statistics: accuracy with a Wilson interval, per-task tables, majority vote, paired comparison of two exams.

Every rule is named where it is used. Intervals are 95% two-sided unless a ``z`` is passed; nothing here
needs scipy (the tests check the numbers against it when it happens to be installed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Any, NamedTuple

Z_95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054
OVERALL = "overall"


class Interval(NamedTuple):
    low: float
    high: float


def _check_counts(correct: int, n: int) -> None:
    if isinstance(correct, bool) or isinstance(n, bool) or not isinstance(correct, int) or not isinstance(n, int):
        raise TypeError(f"counts must be whole numbers, got correct={correct!r}, n={n!r}")
    if not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")


def wilson_interval(correct: int, n: int, z: float = Z_95) -> Interval:
    """The Wilson score interval for a proportion (Wilson 1927): the p whose score test does not reject.

    Not the Wald interval p ± z·sqrt(p(1-p)/n): Wald has zero width at 0/n and n/n (a task the student got
    all wrong would read "0% [0%, 0%]"), can leave [0, 1], and covers far less than 95% at the small n of
    per-task rows (Brown, Cai & DasGupta 2001, Statistical Science 16:101). Wilson stays inside [0, 1] and
    close to nominal coverage. With n = 0 there is no evidence, and the interval is the whole (0, 1).
    """
    _check_counts(correct, n)
    if n == 0:
        return Interval(0.0, 1.0)
    p, z2 = correct / n, z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if correct == 0 else max(0.0, centre - half)  # exactly 0 and 1 there, not 2.8e-17 away
    high = 1.0 if correct == n else min(1.0, centre + half)
    return Interval(low, high)


@dataclass(frozen=True)
class Accuracy:
    """``correct`` right out of ``n``, the share (None when n is 0) and its Wilson interval."""

    correct: int
    n: int

    def __post_init__(self) -> None:
        _check_counts(self.correct, self.n)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def interval(self) -> Interval:
        return wilson_interval(self.correct, self.n)

    def as_json(self) -> dict[str, Any]:
        low, high = self.interval
        return {"correct": self.correct, "n": self.n, "accuracy": self.accuracy, "low": low, "high": high}


# --- per-task table ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskRow(Accuracy):
    """One row of the results table: a task (or ``OVERALL``) with its counts, accuracy and interval."""

    task: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"task": self.task, **super().as_json()}


@dataclass(frozen=True)
class TaskTable:
    """Per-task rows (by task name), every problem pooled, and SALAM's table summary over tasks.

    SALAM reports each benchmark as the min, max and average of its per-task accuracies; ``average`` is that
    unweighted mean over tasks (a task of 20 problems counts as much as one of 200), ``overall`` pools the
    problems instead. ``lowest``/``highest`` are the first such task by name when several tie.
    """

    rows: tuple[TaskRow, ...]
    overall: TaskRow
    lowest: TaskRow | None
    highest: TaskRow | None
    average: float | None

    def as_json(self) -> dict[str, Any]:
        return {"rows": [row.as_json() for row in self.rows], "overall": self.overall.as_json(),
                "lowest": self.lowest and self.lowest.task, "highest": self.highest and self.highest.task,
                "average": self.average}


def task_table(results: Iterable[tuple[str, bool]]) -> TaskTable:
    """The table for (task, correct) pairs, one pair per problem (after any majority vote)."""
    counts: dict[str, list[int]] = {}
    for task, correct in results:
        tally = counts.setdefault(task, [0, 0])
        tally[0] += bool(correct)
        tally[1] += 1
    rows = tuple(TaskRow(right, n, task) for task, (right, n) in sorted(counts.items()))
    overall = TaskRow(sum(row.correct for row in rows), sum(row.n for row in rows), OVERALL)
    if not rows:
        return TaskTable(rows, overall, None, None, None)
    shares = [row.accuracy for row in rows]
    lowest = rows[shares.index(min(shares))]
    highest = rows[shares.index(max(shares))]
    return TaskTable(rows, overall, lowest, highest, math.fsum(shares) / len(shares))


# --- majority vote -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Vote:
    """The voted answer as its first sample wrote it, that sample's correctness, and the tally."""

    answer: str | None
    correct: bool
    votes: int
    voters: int  # samples that gave an answer
    sample_index: int  # the sample the answer and its correctness come from


def majority_vote(samples: Sequence[tuple[str | None, bool]],
                  normalise: Callable[[str], Hashable] = str.strip) -> Vote:
    """Self-consistency vote over one problem's samples, each (extracted answer, correct).

    Answers are grouped by ``normalise`` (pass the benchmark's normaliser; the default only trims
    whitespace). Samples with no answer (None or blank) do not vote. The group with most votes wins; on a
    tie, the group whose first sample came earliest wins (first seen), so the result depends only on the
    sample order. The winner's answer and correctness are those of its first sample. When no sample gave
    an answer, sample 0 stands, with no votes.
    """
    if not samples:
        raise ValueError("majority_vote needs at least one sample")
    groups: dict[Hashable, list[int]] = {}  # key -> sample indexes, in first-seen order
    for index, (answer, _) in enumerate(samples):
        if answer is None or not answer.strip():
            continue
        groups.setdefault(normalise(answer), []).append(index)
    if not groups:
        return Vote(samples[0][0], bool(samples[0][1]), 0, 0, 0)
    winner = max(groups.values(), key=len)  # max keeps the first of equal lengths: first seen
    first = winner[0]
    return Vote(samples[first][0], bool(samples[first][1]), len(winner), sum(map(len, groups.values())), first)


# --- paired comparison -------------------------------------------------------------------------------

@dataclass(frozen=True)
class McNemar:
    """McNemar's test on the discordant pairs: exact binomial, two-sided.

    Under "no change" each discordant problem is equally likely to be fixed or broken, so the smaller
    count is Binomial(fixed + broken, 1/2); p = min(1, 2·P(X <= smaller)), summed with exact integers.
    Always exact, rather than exact below 25 discordant pairs and chi-square above: the exact test is
    valid at any count, costs nothing at exam sizes, and does not make p jump at an arbitrary cut-off.
    ``chi_square`` (with Edwards' continuity correction, (|f - b| - 1)² / (f + b)) is given for reference.
    """

    fixed: int
    broken: int
    p_value: float

    @property
    def discordant(self) -> int:
        return self.fixed + self.broken

    @property
    def chi_square(self) -> float | None:
        if not self.discordant:
            return None
        return max(abs(self.fixed - self.broken) - 1, 0) ** 2 / self.discordant


def mcnemar_exact(fixed: int, broken: int) -> McNemar:
    """McNemar's exact test for ``fixed`` wrong->right and ``broken`` right->wrong problems."""
    _check_counts(fixed, fixed + broken)
    total = fixed + broken
    tail = sum(math.comb(total, k) for k in range(min(fixed, broken) + 1))
    p_value = min(Fraction(1), Fraction(2 * tail, 2 ** total)) if total else Fraction(1)
    return McNemar(fixed, broken, float(p_value))


def paired_difference_interval(both_right: int, broken: int, fixed: int, both_wrong: int,
                               z: float = Z_95) -> Interval:
    """Interval for accuracy(after) - accuracy(before) on the same problems: Newcombe (1998) method 10.

    Newcombe, "Improved confidence intervals for the difference between binomial proportions based on
    paired data", Statistics in Medicine 17:2635-2650: square-and-add of the two Wilson intervals, with
    their correlation phi estimated from the 2x2 table (the product term corrected by n/2 toward zero, as
    the method defines it). Chosen over the Wald paired interval, which fails like Wald does when few
    problems flip. n = 0 gives (-1, 1). The ends are clipped to [-1, 1].
    """
    cells = (both_right, broken, fixed, both_wrong)
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in cells):
        raise ValueError(f"the 2x2 counts must be whole numbers >= 0, got {cells}")
    n = sum(cells)
    if n == 0:
        return Interval(-1.0, 1.0)
    after, before = both_right + fixed, both_right + broken
    p1, p2 = after / n, before / n
    l1, u1 = wilson_interval(after, n, z)
    l2, u2 = wilson_interval(before, n, z)
    phi = _newcombe_phi(both_right, broken, fixed, both_wrong)
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)))
    high = d + math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)))
    return Interval(max(-1.0, low), min(1.0, high))


def _newcombe_phi(both_right: int, broken: int, fixed: int, both_wrong: int) -> float:
    n = both_right + broken + fixed + both_wrong
    margins = (both_right + broken, fixed + both_wrong, both_right + fixed, broken + both_wrong)
    if 0 in margins:
        return 0.0
    product = both_right * both_wrong - broken * fixed
    if product > n / 2:
        product -= n / 2
    elif product >= 0:
        product = 0
    return product / math.sqrt(math.prod(margins))


@dataclass(frozen=True)
class PairedComparison:
    """Two exams on the problems both answered: accuracies, the difference after - before with Newcombe's
    interval, McNemar's test, and which problems flipped. Problems only one exam has are listed, not used."""

    before: Accuracy
    after: Accuracy
    interval: Interval
    mcnemar: McNemar
    fixed: tuple[Hashable, ...]  # wrong before, right after
    broken: tuple[Hashable, ...]  # right before, wrong after
    still_wrong: tuple[Hashable, ...]
    still_right: tuple[Hashable, ...]
    only_before: tuple[Hashable, ...]
    only_after: tuple[Hashable, ...]

    @property
    def n(self) -> int:
        return self.before.n

    @property
    def difference(self) -> float | None:
        return (len(self.fixed) - len(self.broken)) / self.n if self.n else None

    def verdict(self, alpha: float = 0.05) -> str:
        """"improved" or "worsened" when McNemar's p is below ``alpha``, else "no significant change"."""
        if self.mcnemar.p_value >= alpha or not self.difference:
            return "no significant change"
        return "improved" if self.difference > 0 else "worsened"

    def as_json(self) -> dict[str, Any]:
        return {"n": self.n, "before": self.before.as_json(), "after": self.after.as_json(),
                "difference": self.difference, "low": self.interval.low, "high": self.interval.high,
                "mcnemar_p": self.mcnemar.p_value, "mcnemar_chi_square": self.mcnemar.chi_square,
                "verdict": self.verdict(), "fixed": list(self.fixed), "broken": list(self.broken),
                "still_wrong": list(self.still_wrong), "still_right": list(self.still_right),
                "only_before": list(self.only_before), "only_after": list(self.only_after)}


def compare_exams(before: Mapping[Hashable, bool], after: Mapping[Hashable, bool]) -> PairedComparison:
    """Compare two exams given as problem id -> correct (one final answer per problem).

    Lists keep ``before``'s order (``only_after`` keeps ``after``'s).
    """
    flips: dict[tuple[bool, bool], list[Hashable]] = {(a, b): [] for a in (False, True) for b in (False, True)}
    for problem, was_right in before.items():
        if problem in after:
            flips[(bool(was_right), bool(after[problem]))].append(problem)
    fixed, broken = flips[(False, True)], flips[(True, False)]
    still_wrong, still_right = flips[(False, False)], flips[(True, True)]
    n = len(fixed) + len(broken) + len(still_wrong) + len(still_right)
    return PairedComparison(
        before=Accuracy(len(still_right) + len(broken), n), after=Accuracy(len(still_right) + len(fixed), n),
        interval=paired_difference_interval(len(still_right), len(broken), len(fixed), len(still_wrong)),
        mcnemar=mcnemar_exact(len(fixed), len(broken)),
        fixed=tuple(fixed), broken=tuple(broken), still_wrong=tuple(still_wrong), still_right=tuple(still_right),
        only_before=tuple(p for p in before if p not in after), only_after=tuple(p for p in after if p not in before),
    )
