"""Template filters of the accuracy dashboard."""

from django import template

register = template.Library()


@register.filter
def percent(value: float | None, places: int = 1) -> str:
    """0.6667 as "66.7%"; None (nothing to measure) as an em dash."""
    if value is None:
        return "—"
    return f"{value:.{int(places)}%}"
