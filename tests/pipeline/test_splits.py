"""Split rules: seeded splits are deterministic and order-free, first80 follows SALAM, file splits are kept."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from pipeline.benchmarks.records import DatasetFormatError, ProblemRecord
from pipeline.splits import SplitRule, split_labels


def records(n: int, task: str = "", split: str = "") -> list[ProblemRecord]:
    return [ProblemRecord(external_id=f"{task}{i}", question=f"q{i}", gold_answer="1", task=task, split=split) for i in range(n)]


def apply_split(items: list[ProblemRecord], rule: SplitRule) -> list[ProblemRecord]:
    return [replace(item, split=label) for item, label in zip(items, split_labels(items, rule))]


def splits(items) -> dict[str, str]:
    return {r.external_id: r.split for r in items}


def test_seeded_split_has_the_asked_fraction_and_is_reproducible():
    first = apply_split(records(100), SplitRule(rule="seeded", seed=7, test_fraction=0.25))
    again = apply_split(records(100), SplitRule(rule="seeded", seed=7, test_fraction=0.25))
    assert sum(r.split == "test" for r in first) == 25
    assert splits(first) == splits(again)


def test_seeded_split_ignores_file_order_and_changes_with_the_seed():
    shuffled = records(100)
    random.Random(1).shuffle(shuffled)
    rule = SplitRule(rule="seeded", seed=7)
    assert splits(apply_split(shuffled, rule)) == splits(apply_split(records(100), rule))
    assert splits(apply_split(records(100), SplitRule(rule="seeded", seed=8))) != splits(apply_split(records(100), rule))


def test_first80_takes_the_first_80_percent_of_each_task_in_file_order():
    items = records(10, task="a") + records(5, task="b")
    result = apply_split(items, SplitRule(rule="first80"))
    assert [r.split for r in result if r.task == "a"] == ["train"] * 8 + ["test"] * 2
    # 5 * 0.8 = 4: SALAM's 250-problem tasks give 200 train and 50 test the same way.
    assert [r.split for r in result if r.task == "b"] == ["train"] * 4 + ["test"]


def test_auto_keeps_the_file_split_when_every_record_has_one():
    items = records(3, split="test") + records(2, task="t", split="train")
    assert [r.split for r in apply_split(items, SplitRule())] == ["test"] * 3 + ["train"] * 2


def test_auto_falls_back_to_seeded_when_the_file_has_no_split():
    result = apply_split(records(10), SplitRule())
    assert {r.split for r in result} == {"train", "test"}


def test_file_rule_refuses_records_without_a_split():
    with pytest.raises(DatasetFormatError, match="record 1.*does not say which split"):
        apply_split(records(2), SplitRule(rule="file"))


@pytest.mark.parametrize("rule,fraction", [("bogus", 0.2), ("seeded", 0.0), ("seeded", 1.5)])
def test_invalid_rules_are_refused(rule, fraction):
    with pytest.raises(ValueError):
        SplitRule(rule=rule, test_fraction=fraction)
