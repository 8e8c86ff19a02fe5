"""Template filters for exam numbers: shares as percentages, 95% intervals, signed differences in points."""

from django import template

register = template.Library()


@register.filter
def percent(share) -> str:
    """0.6333 -> "63.3%"; None (no problems) -> "—"."""
    return "—" if share is None else f"{100 * share:.1f}%"


@register.filter
def interval(bounds) -> str:
    """A (low, high) interval of shares -> "45.5–78.1%"."""
    low, high = bounds
    return f"{100 * low:.1f}–{100 * high:.1f}%"


@register.filter
def points(difference) -> str:
    """A difference of shares in percentage points, signed: 0.4 -> "+40.0"; None -> "—"."""
    return "—" if difference is None else f"{100 * difference:+.1f}"
