"""Errata's own demo dataset: arithmetic word problems generated from templates, with worked answers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from pipeline.benchmarks.records import ProblemRecord

NAMES = ("Ada", "Bruno", "Chen", "Dalia", "Emeka", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kira", "Luis")
THINGS = ("apples", "marbles", "stickers", "pencils", "shells", "cards", "stamps", "cookies")


@dataclass(frozen=True)
class Worked:
    question: str
    steps: str
    answer: int


def _shopping(rng: random.Random) -> Worked:
    name, price, count = rng.choice(NAMES), rng.randint(2, 9), rng.randint(2, 8)
    paid = price * count + rng.randint(1, 20)
    total = price * count
    return Worked(
        f"{name} buys {count} notebooks at ${price} each and pays with ${paid}. How much change does {name} get?",
        f"The notebooks cost {count} * {price} = {total} dollars. The change is {paid} - {total} = {paid - total}.",
        paid - total,
    )


def _sharing(rng: random.Random) -> Worked:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    friends, each, left = rng.randint(2, 6), rng.randint(3, 12), rng.randint(0, 5)
    total = friends * each + left
    return Worked(
        f"{name} has {total} {thing} and gives the same number to each of {friends} friends, keeping {left}. "
        f"How many {thing} does each friend get?",
        f"{name} gives away {total} - {left} = {total - left} {thing}. Each friend gets {total - left} / {friends} = {each}.",
        each,
    )


def _saving(rng: random.Random) -> Worked:
    name, weekly, weeks = rng.choice(NAMES), rng.randint(3, 15), rng.randint(2, 10)
    saved = weekly * weeks
    spent = rng.randint(1, min(10, saved - 1))
    return Worked(
        f"{name} saves ${weekly} every week for {weeks} weeks, then spends ${spent} on a book. How many dollars are left?",
        f"{name} saves {weekly} * {weeks} = {saved} dollars. After the book, {saved} - {spent} = {saved - spent} are left.",
        saved - spent,
    )


def _garden(rng: random.Random) -> Worked:
    rows, per_row, eaten = rng.randint(3, 9), rng.randint(4, 12), rng.randint(1, 9)
    grown = rows * per_row
    return Worked(
        f"A garden has {rows} rows of carrots with {per_row} carrots in each row. Rabbits eat {eaten} carrots. "
        "How many carrots are left?",
        f"There are {rows} * {per_row} = {grown} carrots. After the rabbits, {grown} - {eaten} = {grown - eaten} are left.",
        grown - eaten,
    )


def _trip(rng: random.Random) -> Worked:
    speed, hours, extra = rng.randint(30, 90), rng.randint(2, 6), rng.randint(5, 40)
    driven = speed * hours
    return Worked(
        f"A bus drives at {speed} km per hour for {hours} hours, then {extra} km more to the station. "
        "How many kilometres does it drive in all?",
        f"It drives {speed} * {hours} = {driven} km, then {driven} + {extra} = {driven + extra} km in all.",
        driven + extra,
    )


TEMPLATES: dict[str, Callable[[random.Random], Worked]] = {
    "shopping": _shopping,
    "sharing": _sharing,
    "saving": _saving,
    "garden": _garden,
    "trip": _trip,
}


def demo_problems(count: int = 200, *, seed: int = 2026) -> list[ProblemRecord]:
    """``count`` problems, the same ones for the same seed; the task is the template's name."""
    rng = random.Random(seed)
    problems = []
    for index in range(1, count + 1):
        task = rng.choice(sorted(TEMPLATES))
        worked = TEMPLATES[task](rng)
        problems.append(
            ProblemRecord(
                external_id=f"demo-{index}",
                question=worked.question,
                gold_answer=str(worked.answer),
                gold_rationale=f"{worked.steps} The answer is {worked.answer}.",
                task=task,
            )
        )
    return problems
