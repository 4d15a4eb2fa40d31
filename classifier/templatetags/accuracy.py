"""Template filters of the accuracy dashboard."""

from django import template

from classifier import charts
from classifier.models import TrainingJob

register = template.Library()


@register.filter
def percent(value: float | None, places: int = 1) -> str:
    """0.6667 as "66.7%"; None (nothing to measure) as an em dash."""
    if value is None:
        return "—"
    return f"{value:.{int(places)}%}"


@register.filter
def percentage_points(value: float) -> str:
    """A difference of two shares, 0.02, as "2 percentage points" (not "2.0%", which reads as a share)."""
    points = f"{value * 100:.1f}".removesuffix(".0")
    return f"{points} percentage point{'' if points == '1' else 's'}"


@register.inclusion_tag("classifier/_epoch_curve.html")
def epoch_curve(job: TrainingJob) -> dict:
    """A finished job's learning curve (loss and validation accuracy per epoch), for its row."""
    return {
        "curve": charts.epoch_curve(job.progress.get("history", [])),
        "width": charts.CURVE_WIDTH,
        "height": charts.CURVE_HEIGHT,
    }
