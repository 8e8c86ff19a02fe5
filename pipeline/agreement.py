"""Agreement between raters (annotators, teachers, automatic checks): Cohen's and Fleiss' kappa, percent agreement.

Kappa is computed with exact fractions and returned as a float. It is undefined (``None``) when chance
agreement is already 1, which happens only when every rating in the data is one and the same label:
then observed agreement is 1 too and kappa is 0/0. We return None rather than 1.0 because perfect
agreement on a single label says nothing about whether the raters can tell labels apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction
from typing import Any

Label = Hashable
# One item's ratings: the raters' labels ["good", "bad", "good"], or counts per label {"good": 2, "bad": 1}.
ItemRatings = Sequence[Label] | Mapping[Label, int]


def cohen_kappa(first: Sequence[Label], second: Sequence[Label]) -> float | None:
    """Cohen's kappa of two raters who rated the same items, in the same order (Cohen 1960).

    kappa = (p_o - p_e) / (1 - p_e), p_o the share of items they agree on, p_e the agreement their own
    label frequencies give by chance. None for no items, or when both gave one and the same label throughout.
    """
    if len(first) != len(second):
        raise ValueError(f"the raters rated different numbers of items: {len(first)} and {len(second)}")
    total = len(first)
    if total == 0:
        return None
    observed = Fraction(sum(a == b for a, b in zip(first, second)), total)
    first_counts, second_counts = Counter(first), Counter(second)
    expected = sum(Fraction(first_counts[label] * second_counts[label], total * total) for label in first_counts)
    return _kappa(observed, expected)


def fleiss_kappa(ratings: Sequence[ItemRatings] | Mapping[Any, ItemRatings]) -> float | None:
    """Fleiss' kappa (Fleiss 1971) for items each rated by the same number n >= 2 of raters.

    The raters may differ from item to item; only their number must not. ``ratings`` lists the items (or
    maps item ids to them); an item with another number of ratings raises ValueError naming it.
    None for no items, or when every rating is the same label.
    """
    counts = _item_counts(ratings)
    if not counts:
        return None
    raters = _equal_raters(counts)
    totals: Counter[Label] = Counter()
    for item_counts in counts.values():
        totals.update(item_counts)
    observed = sum(_pair_agreement(item_counts, raters) for item_counts in counts.values()) / len(counts)
    all_ratings = raters * len(counts)
    expected = sum(Fraction(count, all_ratings) ** 2 for count in totals.values())
    return _kappa(observed, expected)


def percent_agreement(ratings: Sequence[ItemRatings] | Mapping[Any, ItemRatings]) -> float | None:
    """The share of agreeing rater pairs per item, averaged over items, as a proportion (0.75 is 75 %).

    For two raters it is the share of items they agree on; for n raters per item it is Fleiss' P-bar.
    Items may have different numbers of raters here; items with fewer than two are left out. None if none is left.
    """
    counts = [item_counts for item_counts in _item_counts(ratings).values() if sum(item_counts.values()) >= 2]
    if not counts:
        return None
    return float(sum(_pair_agreement(item_counts, sum(item_counts.values())) for item_counts in counts) / len(counts))


def agreement_summary(decisions: Mapping[Any, Mapping[Any, Label]]) -> dict[str, Any]:
    """Agreement over ``{item_id: {rater: label}}``, with the statistic the data allows.

    The usual number of raters per item (the most common count of two or more; on a tie the larger) is
    used, and items with another number are left out and counted. Cohen's kappa when the items used were
    all rated by the same two raters, else Fleiss' kappa (for n raters per item, whoever they are).
    """
    raters = {rater for labels in decisions.values() for rater in labels}
    summary: dict[str, Any] = {
        "method": None, "kappa": None, "percent_agreement": None, "items": len(decisions), "items_used": 0,
        "items_left_out": len(decisions), "raters": len(raters), "raters_per_item": None,
    }
    size = _usual_raters_per_item(decisions)
    if size is None:
        return summary
    used = [labels for labels in decisions.values() if len(labels) == size]
    method, kappa = _kappa_of(used)
    summary.update(method=method, kappa=kappa, items_used=len(used), items_left_out=len(decisions) - len(used),
                   raters_per_item=size, percent_agreement=percent_agreement([list(v.values()) for v in used]))
    return summary


def _usual_raters_per_item(decisions: Mapping[Any, Mapping[Any, Label]]) -> int | None:
    """The most common number of raters among items with two or more (the larger on a tie); None if none has two."""
    rated = Counter(len(labels) for labels in decisions.values() if len(labels) >= 2)
    return max(rated, key=lambda count: (rated[count], count)) if rated else None


def _kappa_of(used: list[Mapping[Any, Label]]) -> tuple[str, float | None]:
    """Cohen's kappa when one pair of raters rated every item, else Fleiss'."""
    raters = {rater for labels in used for rater in labels}
    if len(raters) == 2 and all(len(labels) == 2 for labels in used):
        first, second = sorted(raters, key=str)
        return "cohen", cohen_kappa([labels[first] for labels in used], [labels[second] for labels in used])
    return "fleiss", fleiss_kappa([list(labels.values()) for labels in used])


def _kappa(observed: Fraction, expected: Fraction) -> float | None:
    if expected == 1:
        return None
    return float((observed - expected) / (1 - expected))


def _item_counts(ratings: Sequence[ItemRatings] | Mapping[Any, ItemRatings]) -> dict[Any, Counter[Label]]:
    """Each item's counts per label, keyed by the item's id (its position from 1 in a list)."""
    items = ratings.items() if isinstance(ratings, Mapping) else enumerate(ratings, start=1)
    return {item: _counts(item, value) for item, value in items}


def _counts(item: Any, value: ItemRatings) -> Counter[Label]:
    if isinstance(value, Mapping):
        bad = next((count for count in value.values()
                    if isinstance(count, bool) or not isinstance(count, int) or count < 0), None)
        if bad is not None:
            raise ValueError(f"item {item!r}: label counts must be whole numbers >= 0, got {bad!r}")
        return Counter({label: count for label, count in value.items() if count})
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"item {item!r}: expected a list of labels or a mapping label -> count, got {value!r}")
    return Counter(value)


def _equal_raters(counts: Mapping[Any, Counter[Label]]) -> int:
    """The number of ratings every item has; ValueError naming the first item that differs or has fewer than 2."""
    first_item, first = next(iter(counts.items()))
    raters = sum(first.values())
    if raters < 2:
        raise ValueError(f"item {first_item!r} has {raters} rating(s); Fleiss' kappa needs at least 2 per item")
    for item, item_counts in counts.items():
        if sum(item_counts.values()) != raters:
            raise ValueError(f"item {item!r} has {sum(item_counts.values())} ratings, item {first_item!r} has "
                             f"{raters}; Fleiss' kappa needs the same number for every item")
    return raters


def _pair_agreement(item_counts: Counter[Label], raters: int) -> Fraction:
    """P_i: the share of the item's n(n-1) ordered rater pairs that gave the same label."""
    return Fraction(sum(count * (count - 1) for count in item_counts.values()), raters * (raters - 1))
