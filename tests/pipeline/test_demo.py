"""The demo generator: reproducible problems whose gold answers agree with their worked solutions."""

from __future__ import annotations

import operator
import re

from pipeline.demo import TEMPLATES, demo_problems

OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv}


def test_same_seed_same_problems_and_other_seed_other_problems():
    assert demo_problems(30, seed=1) == demo_problems(30, seed=1)
    assert demo_problems(30, seed=1) != demo_problems(30, seed=2)


def test_every_gold_answer_is_the_number_its_rationale_ends_with():
    for problem in demo_problems(300):
        assert re.search(r"The answer is (-?\d+)\.$", problem.gold_rationale).group(1) == problem.gold_answer


def test_the_arithmetic_in_every_rationale_is_right():
    for problem in demo_problems(300):
        for left, op, right, result in re.findall(r"(\d+) ([-+*/]) (\d+) = (\d+)", problem.gold_rationale):
            assert OPERATORS[op](int(left), int(right)) == int(result), problem.gold_rationale


def test_answers_are_positive_whole_numbers():
    assert all(int(p.gold_answer) > 0 for p in demo_problems(500))


def test_ids_are_unique_and_every_template_is_used():
    problems = demo_problems(200)
    assert len({p.external_id for p in problems}) == 200
    assert {p.task for p in problems} == set(TEMPLATES)
