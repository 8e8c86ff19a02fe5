"""LbT M1 selection (MAX, SUM, majority) on hand-made scores, ties as LbT's search_rationale.py breaks them."""

from __future__ import annotations

import random

import pytest

from pipeline.benchmarks.records import ProblemRecord
from pipeline.exams.selection import RULES, ScoredRationale, answer_groups, related_problems, select_all, select_answer


def scored(*pairs: tuple[str, int]) -> list[ScoredRationale]:
    return [ScoredRationale(f"rationale {i}", answer, score) for i, (answer, score) in enumerate(pairs)]


# (answer, LbT score) per rationale -> the (answer, first rationale index) chosen by max, sum, majority
CASES = [
    # groups A (2 rationales, max 4, sum 7), B (1, 5, 5), C (1, 5, 5): MAX ties B and C on (5, 1): C, seen later
    ([("A", 3), ("B", 5), ("A", 4), ("C", 5)], {"max": ("C", 3), "sum": ("A", 0), "majority": ("A", 0)}),
    # MAX ties A and B on 5; B has more rationales, so B
    ([("A", 5), ("B", 5), ("B", 1)], {"max": ("B", 1), "sum": ("B", 1), "majority": ("B", 1)}),
    # a tie on everything goes to the answer seen last (LbT takes sorted(...)[-1]), majority included
    ([("A", 2), ("B", 2)], {"max": ("B", 1), "sum": ("B", 1), "majority": ("B", 1)}),
    # MAX and SUM disagree: A has the single best rationale, B the larger total (5 + 5 > 9)
    ([("A", 9), ("B", 5), ("B", 5)], {"max": ("A", 0), "sum": ("B", 1), "majority": ("B", 1)}),
    # the majority answer's rationales all scored badly: LbT scores overrule the count
    ([("A", 0), ("A", 0), ("A", 1), ("B", 4)], {"max": ("B", 3), "sum": ("B", 3), "majority": ("A", 0)}),
    # SUM ties A (6, 1 rationale) and B (3 + 3, 2 rationales): the count decides, B
    ([("A", 6), ("B", 3), ("B", 3)], {"max": ("A", 0), "sum": ("B", 1), "majority": ("B", 1)}),
    # one rationale: every rule agrees
    ([("42", 0)], {"max": ("42", 0), "sum": ("42", 0), "majority": ("42", 0)}),
]


@pytest.mark.parametrize("pairs,expected", CASES)
def test_lbt_selection_on_hand_made_scores(pairs, expected):
    chosen = select_all(scored(*pairs))
    assert {rule: (s.answer, s.rationale_index) for rule, s in chosen.items()} == expected


def lbt_reference(pairs: list[tuple[str, int]], dim: int) -> str:
    """search_rationale.py's loop, transcribed: [count, max, sum] per answer, sorted by (stat, count), last."""
    all_answers: dict[str, list[int]] = {}
    for answer, lbt_score in pairs:
        if answer in all_answers:
            all_answers[answer][0] += 1
            all_answers[answer][1] = max(lbt_score, all_answers[answer][1])
            all_answers[answer][2] += lbt_score
        else:
            all_answers[answer] = [1, lbt_score, lbt_score]
    return sorted(all_answers.items(), key=lambda item: (item[1][dim], item[1][0]))[-1][0]


def test_selection_agrees_with_lbts_own_loop_on_random_tables():
    rng = random.Random(7)
    for _ in range(500):
        pairs = [(rng.choice("ABCD"), rng.randint(0, 3)) for _ in range(rng.randint(1, 8))]
        chosen = select_all(scored(*pairs))
        for rule, dim in (("majority", 0), ("max", 1), ("sum", 2)):
            assert chosen[rule].answer == lbt_reference(pairs, dim), (pairs, rule)


def test_groups_keep_first_seen_order_and_tallies():
    groups = answer_groups(scored(("A", 3), ("B", 5), ("A", 4)))
    assert [(g.answer, g.first_index, g.count, g.max_score, g.sum_score) for g in groups] == [
        ("A", 0, 2, 4, 7), ("B", 1, 1, 5, 5)]


def test_answers_are_compared_after_the_benchmarks_normalisation():
    pairs = [("1/2", 1), ("0.5", 1), ("2", 3), (" 0.50", 1)]
    value = {"1/2": 0.5, "0.5": 0.5, " 0.50": 0.5, "2": 2.0}
    by_key = select_all(scored(*pairs), normalise=value.__getitem__)
    by_pair = select_all(scored(*pairs), equivalent=lambda a, b: value[a] == value[b])
    for chosen in (by_key, by_pair):
        # 1/2 group: 3 rationales, sum 3, max 1; "2": 1 rationale, sum 3, max 3
        assert {rule: s.answer for rule, s in chosen.items()} == {"max": "2", "sum": "1/2", "majority": "1/2"}
    # without normalisation every string is its own answer: "2" has the best max and sum, and the
    # four-way majority tie goes to the last seen
    raw = select_all(scored(*pairs))
    assert {rule: s.answer for rule, s in raw.items()} == {"max": "2", "sum": "2", "majority": " 0.50"}


def test_selection_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="unknown LbT selection rule 'avg'"):
        select_answer(scored(("A", 1)), "avg")
    with pytest.raises(ValueError, match="at least one"):
        select_answer([], "max")
    with pytest.raises(ValueError, match="not both"):
        answer_groups(scored(("A", 1)), normalise=str.strip, equivalent=str.__eq__)
    assert RULES == ("max", "sum", "majority")


# --- related exam problems ---------------------------------------------------------------------------

def problem(pid: str, task: str = "t", group: str | None = None, question: str | None = None) -> ProblemRecord:
    return ProblemRecord(external_id=pid, question=question or f"question {pid}", gold_answer="1", task=task,
                         metadata={} if group is None else {"unique_id": group})


TEACHING = problem("tp", task="algebra", group="g1")
POOL = [problem("tp", task="algebra", group="g1"), problem("e1", "algebra", "g1"), problem("e2", "geometry", "g1"),
        problem("e3", "algebra", "g2"), problem("e4", "algebra", "g1", question="question tp"),
        problem("e5", "algebra", "g1")]


def ids(problems):
    return [p.external_id for p in problems]


def test_similar_takes_the_most_similar_others_and_keeps_pool_order_on_ties():
    similarity = [1.0, 0.2, 0.9, 0.5, 0.99, 0.5]
    # tp itself and e4 (the same question) are never exam problems; e3 and e5 tie on 0.5: pool order
    assert ids(related_problems(TEACHING, POOL, rule="similar", count=3, similarity=similarity)) == ["e2", "e3", "e5"]
    with pytest.raises(ValueError, match="similarity"):
        related_problems(TEACHING, POOL, rule="similar", count=3)


def test_same_group_follows_lbts_func_exam_maker():
    assert ids(related_problems(TEACHING, POOL, rule="same_group", count=5, group_key="unique_id")) == ["e1", "e2", "e5"]
    with pytest.raises(ValueError, match="group_key"):
        related_problems(problem("x"), POOL, rule="same_group", count=2, group_key="unique_id")


def test_same_task_draws_by_hash_so_pool_order_does_not_matter():
    first = related_problems(TEACHING, POOL, rule="same_task", count=2, seed=3)
    again = related_problems(TEACHING, list(reversed(POOL)), rule="same_task", count=2, seed=3)
    assert ids(first) == ids(again)
    assert set(ids(first)) <= {"e1", "e3", "e5"}
    assert len(related_problems(TEACHING, POOL, rule="same_task", count=10)) == 3
    with pytest.raises(ValueError, match="unknown related-problem rule"):
        related_problems(TEACHING, POOL, rule="nearest", count=1)
