"""Template filters of the video pages."""

from django import template

from classifier import charts

register = template.Library()


@register.filter
def timestamp(seconds: float | None) -> str:
    """A time in a video, 75.4 as "1:15.4"; None as an em dash."""
    return "—" if seconds is None else charts.timestamp(seconds)
