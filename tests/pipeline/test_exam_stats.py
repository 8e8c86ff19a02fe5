"""Exam statistics against hand-computed and published values (and scipy, when it is installed)."""

from __future__ import annotations

import json
import math

import pytest

from pipeline.exams.stats import (
    OVERALL, Accuracy, Interval, compare_exams, majority_vote, mcnemar_exact, paired_difference_interval, task_table,
    wilson_interval,
)

# Wilson by hand, z = 1.96: (7, 10): p 0.7, denominator 1 + 3.8415/10 = 1.38415,
# centre (0.7 + 0.19207) / 1.38415 = 0.64449, half 1.96 * sqrt(0.021 + 0.0096) / 1.38415 = 0.24772.
WILSON = [
    (7, 10, 0.3968, 0.8922),
    (0, 10, 0.0, 0.2775),  # Wald would say [0, 0]
    (10, 10, 0.7225, 1.0),
    (1, 2, 0.0945, 0.9055),
    (45, 50, 0.7864, 0.9565),
    (50, 100, 0.4038, 0.5962),
    (1, 1, 0.2065, 1.0),
]


@pytest.mark.parametrize("correct,n,low,high", WILSON)
def test_wilson_interval_matches_hand_computed_values(correct, n, low, high):
    interval = wilson_interval(correct, n)
    assert interval.low == pytest.approx(low, abs=5e-5)
    assert interval.high == pytest.approx(high, abs=5e-5)


def test_wilson_is_exactly_0_and_1_at_the_edges_and_uninformative_without_data():
    assert wilson_interval(0, 10).low == 0.0
    assert wilson_interval(10, 10).high == 1.0
    assert wilson_interval(0, 0) == Interval(0.0, 1.0)


@pytest.mark.parametrize("correct,n", [(-1, 5), (6, 5), (True, 5)])
def test_wilson_refuses_impossible_counts(correct, n):
    with pytest.raises((ValueError, TypeError)):
        wilson_interval(correct, n)


def test_wilson_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for correct, n in [(0, 7), (3, 7), (7, 7), (13, 40), (512, 1000)]:
        expected = stats.binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert tuple(wilson_interval(correct, n)) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_accuracy_has_no_share_without_problems():
    assert Accuracy(0, 0).accuracy is None
    assert Accuracy(3, 4).as_json() == {"correct": 3, "n": 4, "accuracy": 0.75,
                                        "low": wilson_interval(3, 4).low, "high": wilson_interval(3, 4).high}


# --- per-task table ----------------------------------------------------------------------------------

def test_task_table_has_rows_by_name_a_pooled_row_and_salams_min_max_average():
    results = [("b", True)] * 1 + [("b", False)] * 3 + [("a", True)] * 9 + [("a", False)] * 1 + [("c", True)] * 2
    table = task_table(results)
    assert [(r.task, r.correct, r.n, r.accuracy) for r in table.rows] == [
        ("a", 9, 10, 0.9), ("b", 1, 4, 0.25), ("c", 2, 2, 1.0)]
    assert (table.overall.task, table.overall.correct, table.overall.n) == (OVERALL, 12, 16)
    assert (table.lowest.task, table.highest.task) == ("b", "c")
    # SALAM's average is over tasks, unweighted: (0.9 + 0.25 + 1.0) / 3, not 12/16.
    assert table.average == pytest.approx(2.15 / 3)
    assert table.rows[0].interval == wilson_interval(9, 10)
    json.dumps(table.as_json())


def test_task_table_ties_for_lowest_go_to_the_first_task_by_name_and_an_empty_table_has_no_summary():
    table = task_table([("z", False), ("m", False), ("k", True)])
    assert (table.lowest.task, table.highest.task) == ("m", "k")
    empty = task_table([])
    assert (empty.rows, empty.lowest, empty.average, empty.overall.n) == ((), None, None, 0)


# --- majority vote -----------------------------------------------------------------------------------

VOTES = [
    # samples (answer, correct), expected (answer, correct, votes, voters, sample index)
    ([("7", True), ("8", False), ("7", True)], ("7", True, 2, 3, 0)),
    ([("8", False), ("7", True), ("7", True)], ("7", True, 2, 3, 1)),
    # a tie goes to the answer seen first
    ([("8", False), ("7", True)], ("8", False, 1, 2, 0)),
    ([("7", True), ("8", False), ("8", False), ("7", True)], ("7", True, 2, 4, 0)),
    # samples with no answer do not vote
    ([(None, False), ("", False), ("5", True)], ("5", True, 1, 1, 2)),
    ([(None, False), (None, False), ("5", True)], ("5", True, 1, 1, 2)),
    # nothing to vote on: sample 0 stands
    ([(None, False), ("  ", False)], (None, False, 0, 0, 0)),
    # the default normaliser trims whitespace only
    ([(" 7", True), ("7 ", True), ("8", False)], (" 7", True, 2, 3, 0)),
]


@pytest.mark.parametrize("samples,expected", VOTES)
def test_majority_vote(samples, expected):
    vote = majority_vote(samples)
    assert (vote.answer, vote.correct, vote.votes, vote.voters, vote.sample_index) == expected


def test_majority_vote_groups_with_the_benchmarks_normaliser():
    samples = [("18.0", True), ("19", False), ("18", True), ("19", False), ("18.00", True)]
    vote = majority_vote(samples, normalise=lambda answer: float(answer))
    assert (vote.answer, vote.votes) == ("18.0", 3)
    with pytest.raises(ValueError):
        majority_vote([])


# --- McNemar -----------------------------------------------------------------------------------------

MCNEMAR = [
    # fixed, broken, p. (16, 6): 2 * sum_{k<=6} C(22, k) / 2^22 = 2 * 110056 / 4194304
    (16, 6, 220112 / 4194304),
    (6, 16, 220112 / 4194304),  # two-sided: symmetric
    (3, 0, 0.25),  # 2 * (1/8)
    (10, 0, 2 / 1024),
    (5, 5, 1.0),  # 2 * P(X <= 5) > 1, capped
    (0, 0, 1.0),  # no discordant pairs, no evidence
    (1, 0, 1.0),
]


@pytest.mark.parametrize("fixed,broken,p", MCNEMAR)
def test_mcnemar_exact(fixed, broken, p):
    assert mcnemar_exact(fixed, broken).p_value == pytest.approx(p, rel=1e-12)


def test_mcnemar_chi_square_is_the_continuity_corrected_statistic():
    # (|16 - 6| - 1)^2 / 22 = 81 / 22; its root 1.919 is the Z that contingencytables' tests print for this table
    assert mcnemar_exact(16, 6).chi_square == pytest.approx(81 / 22)
    assert math.sqrt(mcnemar_exact(16, 6).chi_square) == pytest.approx(1.919, abs=5e-4)
    assert mcnemar_exact(0, 0).chi_square is None


def test_mcnemar_matches_scipys_binomial_test():
    stats = pytest.importorskip("scipy.stats")
    for fixed, broken in [(16, 6), (1, 9), (30, 12), (100, 80), (7, 7)]:
        expected = stats.binomtest(min(fixed, broken), fixed + broken, 0.5).pvalue
        assert mcnemar_exact(fixed, broken).p_value == pytest.approx(expected, rel=1e-9)


# --- Newcombe's paired interval --------------------------------------------------------------------

def test_newcombe_matches_the_published_cavo_example():
    # Fagerland, Lydersen & Laake's Cavo et al. (2012) table [[59, 6], [16, 80]] (rows: the first test);
    # the contingencytables R package's tests print estimate -0.0621, 95% CI -0.1186 to -0.0046.
    # Here "after" is the first test: after right 65, before right 75; fixed 6, broken 16.
    low, high = paired_difference_interval(59, 16, 6, 80)
    assert (low, high) == pytest.approx((-0.1186, -0.0046), abs=5e-5)
    # swapping before and after mirrors the interval
    assert paired_difference_interval(59, 6, 16, 80) == pytest.approx((0.0046, 0.1186), abs=5e-5)


def test_newcombe_by_hand_when_the_two_exams_are_perfectly_anticorrelated():
    # both_right 0, broken 3, fixed 3, both_wrong 0: n 6, both accuracies 3/6, difference 0.
    # phi = (0*0 - 3*3) / sqrt(3*3*3*3) = -1, so each end is the sum of the two Wilson half-widths:
    # Wilson(3, 6) = 0.5 -+ 1.96 * sqrt(0.25/6 + 3.8415/144) / (1 + 3.8415/6) = 0.5 -+ 0.31239.
    assert paired_difference_interval(0, 3, 3, 0) == pytest.approx((-0.62477, 0.62477), abs=5e-5)


def test_newcombe_without_problems_is_the_whole_range():
    assert paired_difference_interval(0, 0, 0, 0) == (-1.0, 1.0)
    with pytest.raises(ValueError):
        paired_difference_interval(1, -1, 0, 0)


# --- comparing two exams -----------------------------------------------------------------------------

def test_compare_exams_lists_flips_and_leaves_out_problems_only_one_exam_has():
    before = {"a": True, "b": False, "c": False, "d": True, "e": True, "x": True}
    after = {"y": False, "e": True, "d": False, "c": False, "b": True, "a": True}
    result = compare_exams(before, after)
    assert (result.fixed, result.broken, result.still_wrong, result.still_right) == (("b",), ("d",), ("c",), ("a", "e"))
    assert (result.only_before, result.only_after) == (("x",), ("y",))
    assert (result.n, result.before.correct, result.after.correct, result.difference) == (5, 3, 3, 0.0)
    assert result.mcnemar.p_value == 1.0
    assert result.interval == paired_difference_interval(2, 1, 1, 1)
    assert result.verdict() == "no significant change"
    json.dumps(result.as_json())


def test_compare_exams_calls_ten_fixes_and_no_breaks_an_improvement():
    before = {f"p{i}": False for i in range(20)}
    after = {f"p{i}": i < 10 for i in range(20)}
    result = compare_exams(before, after)
    assert result.difference == 0.5
    assert result.mcnemar.p_value == 2 / 1024
    assert result.verdict() == "improved"
    assert compare_exams(after, before).verdict() == "worsened"
    assert result.verdict(alpha=0.001) == "no significant change"


def test_compare_exams_with_nothing_in_common():
    result = compare_exams({"a": True}, {"b": True})
    assert (result.n, result.difference, result.interval) == (0, None, (-1.0, 1.0))
    assert result.verdict() == "no significant change"
