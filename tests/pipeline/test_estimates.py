"""Run estimates and the budget cap."""

from __future__ import annotations

import pytest

from pipeline.estimates import Estimate, estimate_requests, tokens_in, within_budget


def test_tokens_are_estimated_from_characters_plus_a_little_per_message():
    assert tokens_in([{"role": "user", "content": "x" * 400}]) == 100 + 4
    assert tokens_in([{"role": "system", "content": ""}, {"role": "user", "content": "abcd"}]) == 1 + 8


def test_an_estimate_counts_requests_tokens_and_dollars():
    conversations = [[{"role": "user", "content": "x" * 396}]] * 10  # 99 + 4 = 103 tokens each
    estimate = estimate_requests(conversations, samples=2, max_tokens=50, price_in_per_1k=1.0, price_out_per_1k=2.0)
    assert estimate == Estimate(requests=10, prompt_tokens=1030, completion_tokens=1000, cost=pytest.approx(1.03 + 2.0))
    assert (estimate + estimate).requests == 20


@pytest.mark.parametrize("budget,spent,next_cost,allowed", [
    (None, 1e9, 1e9, True),  # no cap
    (1.0, 0.5, 0.5, True),  # exactly at the cap is still allowed
    (1.0, 0.5, 0.51, False),
    (0.0, 0.0, 0.0, True),
])
def test_the_budget_allows_what_fits(budget, spent, next_cost, allowed):
    assert within_budget(budget=budget, spent=spent, next_cost=next_cost) is allowed
