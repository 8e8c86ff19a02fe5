"""Cohen's and Fleiss' kappa, percent agreement and the summary, against hand-computed and textbook values."""

from __future__ import annotations

import pytest

from pipeline.agreement import agreement_summary, cohen_kappa, fleiss_kappa, percent_agreement

# Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page: 10 items, 14 raters, 5 categories.
# p_j = (0.143, 0.200, 0.279, 0.150, 0.229); P_e = sum p_j^2 = 0.2128; P-bar = 0.3780;
# kappa = (0.3780 - 0.2128) / (1 - 0.2128) = 0.210.
FLEISS_1971 = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]

# Two raters, 50 items: both yes 20, A yes / B no 5, A no / B yes 10, both no 15.
YES_NO_A = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
YES_NO_B = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15


def counts_table(rows):
    return [{category: count for category, count in enumerate(row)} for row in rows]


def labels_table(rows):
    return [[category for category, count in enumerate(row) for _ in range(count)] for row in rows]


# --- Cohen -----------------------------------------------------------------------------------------

def test_cohen_matches_the_hand_computed_yes_no_table():
    # p_o = (20 + 15) / 50 = 0.70; A says yes 25/50, B 30/50
    # p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.50; kappa = (0.70 - 0.50) / (1 - 0.50) = 0.40
    assert cohen_kappa(YES_NO_A, YES_NO_B) == pytest.approx(0.4)


def test_cohen_with_three_labels_matches_the_hand_computed_value():
    first = ["approve", "approve", "reject", "edit", "approve", "reject"]
    second = ["approve", "reject", "reject", "edit", "approve", "approve"]
    # p_o = 4/6 (items 1, 3, 4, 5)
    # first: approve 3, reject 2, edit 1; second: approve 3, reject 2, edit 1
    # p_e = (3*3 + 2*2 + 1*1) / 36 = 14/36; kappa = (24/36 - 14/36) / (22/36) = 10/22
    assert cohen_kappa(first, second) == pytest.approx(10 / 22)


def test_cohen_is_one_for_perfect_agreement_and_negative_for_systematic_disagreement():
    assert cohen_kappa(["a", "b", "a"], ["a", "b", "a"]) == pytest.approx(1.0)
    # p_o = 0, p_e = 0.5 * 0.5 + 0.5 * 0.5 = 0.5: kappa = -0.5 / 0.5 = -1
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)


def test_cohen_is_undefined_without_items_or_when_everyone_said_the_same_single_label():
    assert cohen_kappa([], []) is None
    # p_o = p_e = 1: 0/0, not "perfect agreement"
    assert cohen_kappa(["ok", "ok", "ok"], ["ok", "ok", "ok"]) is None


def test_cohen_is_zero_not_undefined_when_only_one_rater_used_a_single_label():
    # p_o = 1/2, p_e = 1 * 1/2 = 1/2: kappa = 0
    assert cohen_kappa(["ok", "ok"], ["ok", "bad"]) == 0.0


def test_cohen_refuses_sequences_of_different_lengths():
    with pytest.raises(ValueError, match="3 and 2"):
        cohen_kappa(["a", "b", "a"], ["a", "b"])


def test_cohen_agrees_with_scikit_learn_when_it_is_installed():
    metrics = pytest.importorskip("sklearn.metrics")
    first = ["a", "b", "c", "a", "b", "c", "a", "a", "c", "b", "a"]
    second = ["a", "b", "b", "a", "c", "c", "a", "b", "c", "b", "c"]
    assert cohen_kappa(first, second) == pytest.approx(metrics.cohen_kappa_score(first, second))
    assert cohen_kappa(YES_NO_A, YES_NO_B) == pytest.approx(metrics.cohen_kappa_score(YES_NO_A, YES_NO_B))


# --- Fleiss ----------------------------------------------------------------------------------------

def test_fleiss_reproduces_the_textbook_example_from_counts_and_from_labels():
    assert fleiss_kappa(counts_table(FLEISS_1971)) == pytest.approx(0.20993, abs=5e-6)
    assert fleiss_kappa(labels_table(FLEISS_1971)) == pytest.approx(0.20993, abs=5e-6)
    assert round(fleiss_kappa(counts_table(FLEISS_1971)), 3) == 0.210


def test_fleiss_matches_the_hand_computed_three_rater_value():
    ratings = [["x", "x", "x"], ["x", "y", "y"], ["y", "y", "y"], ["x", "x", "y"]]
    # P_i = 1, 2/6, 1, 2/6 -> P-bar = (1 + 1/3 + 1 + 1/3) / 4 = 2/3
    # x: 3 + 1 + 0 + 2 = 6 of 12, y: 6 of 12 -> P_e = 1/4 + 1/4 = 1/2
    # kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3
    assert fleiss_kappa(ratings) == pytest.approx(1 / 3)


def test_fleiss_with_two_raters_per_item_is_scotts_pi():
    # Same yes/no table: pooled yes = (25 + 30) / 100 = 0.55 -> P_e = 0.55^2 + 0.45^2 = 0.505
    # P-bar = p_o = 0.70; kappa = (0.70 - 0.505) / 0.495 = 0.3939...
    assert fleiss_kappa([[a, b] for a, b in zip(YES_NO_A, YES_NO_B)]) == pytest.approx(0.195 / 0.495)


def test_fleiss_names_the_item_with_a_different_number_of_raters():
    with pytest.raises(ValueError, match=r"item 3 has 2 ratings, item 1 has 3"):
        fleiss_kappa([["a", "a", "b"], ["a", "b", "b"], ["a", "b"]])
    with pytest.raises(ValueError, match=r"item 'q-7' has 4 ratings"):
        fleiss_kappa({"q-1": {"a": 2, "b": 1}, "q-7": {"a": 4}})


def test_fleiss_refuses_items_with_fewer_than_two_ratings_and_bad_counts():
    with pytest.raises(ValueError, match="at least 2"):
        fleiss_kappa([["a"], ["b"]])
    with pytest.raises(ValueError, match="whole numbers"):
        fleiss_kappa([{"a": 1.5, "b": 0.5}])
    with pytest.raises(ValueError, match="list of labels"):
        fleiss_kappa(["ab"])  # a string is not a list of labels


def test_fleiss_is_undefined_without_items_or_with_a_single_label_throughout():
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([["ok", "ok", "ok"], ["ok", "ok", "ok"]]) is None


# --- percent agreement -----------------------------------------------------------------------------

def test_percent_agreement_is_the_share_of_agreeing_pairs():
    # item 1: all 3 pairs agree; item 2: 1 of 3 pairs; item 3 (two raters): 0 of 1; item 4: one rater, left out
    # (1 + 1/3 + 0) / 3 = 4/9
    assert percent_agreement([["a", "a", "a"], ["a", "b", "b"], ["a", "b"], ["a"]]) == pytest.approx(4 / 9)
    assert percent_agreement(labels_table(FLEISS_1971)) == pytest.approx(0.378, abs=5e-4)
    assert percent_agreement([["a"]]) is None


# --- summary ---------------------------------------------------------------------------------------

def test_summary_uses_cohen_for_two_raters_on_shared_items():
    decisions = {
        1: {"anna": "approve", "ben": "approve"},
        2: {"anna": "approve", "ben": "reject"},
        3: {"anna": "reject", "ben": "reject"},
        4: {"anna": "reject"},  # only one rater so far: left out
    }
    # shared: (approve, approve), (approve, reject), (reject, reject): p_o = 2/3
    # anna approve 2/3, ben approve 1/3: p_e = 2/9 + 2/9 = 4/9; kappa = (6/9 - 4/9) / (5/9) = 0.4
    assert agreement_summary(decisions) == {
        "method": "cohen", "kappa": pytest.approx(0.4), "percent_agreement": pytest.approx(2 / 3),
        "items": 4, "items_used": 3, "items_left_out": 1, "raters": 2, "raters_per_item": 2,
    }


def test_summary_uses_fleiss_for_three_raters_and_leaves_out_items_with_fewer():
    decisions = {
        "a": {"r1": "x", "r2": "x", "r3": "x"},
        "b": {"r1": "x", "r2": "y", "r3": "y"},
        "c": {"r1": "y", "r2": "y", "r3": "y"},
        "d": {"r1": "x", "r2": "x", "r3": "y"},
        "e": {"r1": "x", "r3": "y"},  # two of three so far: left out
    }
    summary = agreement_summary(decisions)
    assert summary["method"] == "fleiss"
    assert summary["kappa"] == pytest.approx(1 / 3)  # the hand-computed three-rater table above
    counts = (summary["items_used"], summary["items_left_out"], summary["raters"], summary["raters_per_item"])
    assert counts == (4, 1, 3, 3)


def test_summary_uses_fleiss_when_pairs_of_raters_change_from_item_to_item():
    decisions = {1: {"a": "x", "b": "x"}, 2: {"b": "y", "c": "y"}, 3: {"a": "x", "c": "y"}}
    # n = 2 per item, three different pairs: Cohen does not apply
    # P-bar = (1 + 1 + 0) / 3 = 2/3; x: 3 of 6, y: 3 of 6 -> P_e = 1/2; kappa = (2/3 - 1/2) / (1/2) = 1/3
    summary = agreement_summary(decisions)
    assert (summary["method"], summary["raters_per_item"]) == ("fleiss", 2)
    assert summary["kappa"] == pytest.approx(1 / 3)


def test_summary_without_two_raters_on_any_item_has_no_statistic():
    assert agreement_summary({1: {"anna": "approve"}, 2: {"ben": "reject"}}) == {
        "method": None, "kappa": None, "percent_agreement": None, "items": 2, "items_used": 0,
        "items_left_out": 2, "raters": 2, "raters_per_item": None,
    }
    assert agreement_summary({})["items"] == 0


def test_summary_reports_an_undefined_kappa_as_none():
    summary = agreement_summary({1: {"a": "ok", "b": "ok"}, 2: {"a": "ok", "b": "ok"}})
    assert (summary["method"], summary["kappa"], summary["percent_agreement"]) == ("cohen", None, 1.0)
