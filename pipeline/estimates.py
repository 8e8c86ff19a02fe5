"""Before a run: how many requests, tokens and dollars it will take; during it: whether the budget allows more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

CHARS_PER_TOKEN = 4.0  # a rough English average; the estimate says it is one


@dataclass(frozen=True)
class Estimate:
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float

    def __add__(self, other: "Estimate") -> "Estimate":
        return Estimate(self.requests + other.requests, self.prompt_tokens + other.prompt_tokens,
                        self.completion_tokens + other.completion_tokens, self.cost + other.cost)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost": round(self.cost, 6)}


NOTHING = Estimate(0, 0, 0, 0.0)


def tokens_in(messages: Sequence[dict]) -> int:
    """Approximate prompt tokens of chat messages (characters / 4, plus a few per message for the template)."""
    characters = sum(len(str(message.get("content", ""))) for message in messages)
    return int(characters / CHARS_PER_TOKEN) + 4 * len(messages)


def estimate_requests(conversations: Iterable[Sequence[dict]], *, samples: int, max_tokens: int,
                      price_in_per_1k: float, price_out_per_1k: float) -> Estimate:
    """One request per conversation asking for ``samples`` answers of at most ``max_tokens`` each."""
    requests = prompt = 0
    for messages in conversations:
        requests += 1
        prompt += tokens_in(messages)
    completion = requests * samples * max_tokens
    cost = prompt / 1000 * price_in_per_1k + completion / 1000 * price_out_per_1k
    return Estimate(requests, prompt, completion, cost)


def budget_left(*, budget: float | None, spent: float) -> float | None:
    """Dollars still allowed; None when there is no cap."""
    return None if budget is None else max(budget - spent, 0.0)


def within_budget(*, budget: float | None, spent: float, next_cost: float) -> bool:
    """True when the next step's (estimated) cost still fits under the cap."""
    return budget is None or spent + next_cost <= budget
