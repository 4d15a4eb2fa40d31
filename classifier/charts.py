"""The site's pictures: the accuracy dashboard's numbers and a video's emotion timeline as SVG coordinates.

Drawn on the server, so the page needs no JavaScript and no chart library, prints as it shows,
and every chart has its numbers beside it as text. Python only reshapes the summary's few rows.
"""

import math
from dataclasses import dataclass
from datetime import date, timedelta

from classifier.selectors import AccuracySummary, DayAccuracy, TimelinePoint, Track
from ml import promotion
from ml.labels import EXPRESSIONS
from ml.promotion import Interval

X_TICKS = 5


@dataclass(frozen=True)
class PlotArea:
    """A chart's drawing box, width x height in SVG user units (the SVG scales to the page's width), and
    the plot inside it, from left to right and top to bottom; the margins hold the axes' labels."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int

    def x_at(self, share: float) -> float:
        """The x of a share (0 to 1) of the way from left to right."""
        return self.left + (self.right - self.left) * share

    def y_at(self, share: float) -> float:
        """The y of a share (0 to 1) of the way from the bottom up: 0% at the bottom, 100% at the top."""
        return self.bottom - (self.bottom - self.top) * share


DAY_CHART_AREA = PlotArea(width=640, height=240, left=60, right=604, top=12, bottom=200)


def wilson_interval(successes: int, total: int) -> Interval | None:
    """A 95% interval for an accuracy, honest about how few reviews it rests on; None without any."""
    return promotion.wilson_interval(successes, total) if total > 0 else None


@dataclass(frozen=True)
class Tick:
    position: float
    text: str


@dataclass(frozen=True)
class DayPoint:
    x: float
    y: float
    radius: float  # grows with the day's number of reviews, so a noisy day with one review looks small
    day: DayAccuracy


@dataclass(frozen=True)
class DayChart(PlotArea):
    points: list[DayPoint]
    polyline: str  # the SVG `points` attribute joining the days
    overall_y: float | None  # the overall accuracy's height, drawn as a dashed reference line
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    description: str  # the chart in words, for its aria-label


def day_chart(days: list[DayAccuracy], *, overall: float | None) -> DayChart | None:
    """Accuracy per day of capture on a time axis (gaps between days stay visible); None without reviews."""
    days = [day for day in days if day.reviewed]
    if not days:
        return None
    first, last = days[0].day, days[-1].day
    span = (last - first).days
    most_reviews = max(day.reviewed for day in days)

    def x_of(when: date) -> float:
        return DAY_CHART_AREA.x_at((when - first).days / span if span else 0.5)

    y_of = DAY_CHART_AREA.y_at

    points = [
        DayPoint(
            x=round(x_of(day.day), 1),
            y=round(y_of(day.accuracy), 1),
            radius=round(2 + 3 * math.sqrt(day.reviewed / most_reviews), 1),
            day=day,
        )
        for day in days
    ]
    steps = range(X_TICKS) if span else [0]
    tick_days = sorted({first + timedelta(days=round(span * step / (X_TICKS - 1))) for step in steps})
    same_year = first.year == last.year
    best = max(days, key=lambda day: (day.accuracy, day.reviewed))
    worst = min(days, key=lambda day: (day.accuracy, -day.reviewed))
    description = (
        f"Accuracy per day over {len(days)} day{'s' if len(days) != 1 else ''} with reviews, "
        f"from {_long_day(first)} to {_long_day(last)}; "
        f"highest {best.accuracy:.0%} on {_long_day(best.day)} ({best.reviewed} reviewed), "
        f"lowest {worst.accuracy:.0%} on {_long_day(worst.day)} ({worst.reviewed} reviewed). "
        "The table below lists every day."
    )
    return DayChart(
        **vars(DAY_CHART_AREA),
        points=points,
        polyline=" ".join(f"{point.x},{point.y}" for point in points),
        overall_y=None if overall is None else round(y_of(overall), 1),
        y_ticks=[Tick(position=round(y_of(share), 1), text=f"{share:.0%}") for share in (0, 0.25, 0.5, 0.75, 1)],
        x_ticks=[
            Tick(position=round(x_of(when), 1), text=f"{when.day} {when:%b}" if same_year else f"{when:%b %Y}")
            for when in tick_days
        ],
        description=description,
    )


def _long_day(when: date) -> str:
    return f"{when.day} {when:%B %Y}"


@dataclass(frozen=True)
class ConfusionCell:
    predicted: str
    count: int
    share: float  # of the row: how often a face truly showing this row's expression was predicted as `predicted`
    correct: bool  # on the diagonal


@dataclass(frozen=True)
class ConfusionRow:
    true_label: str
    total: int
    cells: list[ConfusionCell]


def confusion_rows(summary: AccuracySummary) -> list[ConfusionRow]:
    """The confusion matrix as table rows (true expression) of cells (predicted), each shaded by its row share."""
    rows = []
    for true_label, counts in zip(summary.labels, summary.confusion, strict=True):
        total = sum(counts)
        cells = [
            ConfusionCell(
                predicted=predicted,
                count=count,
                share=round(count / total, 3) if total else 0.0,
                correct=predicted == true_label,
            )
            for predicted, count in zip(summary.labels, counts, strict=True)
        ]
        rows.append(ConfusionRow(true_label=true_label, total=total, cells=cells))
    return rows


@dataclass(frozen=True)
class ClassRow:
    label: str
    precision: float | None
    recall: float | None
    predicted: int  # reviewed faces the model gave this expression
    support: int  # reviewed faces truly showing it


def class_rows(summary: AccuracySummary) -> list[ClassRow]:
    rows = []
    for position, label in enumerate(summary.labels):
        score = summary.per_class[label]
        rows.append(
            ClassRow(
                label=label,
                precision=score.precision,
                recall=score.recall,
                predicted=sum(row[position] for row in summary.confusion),
                support=score.support,
            )
        )
    return rows


def dashboard_context(summary: AccuracySummary) -> dict:
    """Everything the accuracy page draws from one summary."""
    return {
        "summary": summary,
        "interval": wilson_interval(summary.correct, summary.reviewed),
        "day_chart": day_chart(summary.by_day, overall=summary.accuracy),
        "model_rows": summary.by_model_version,
        "class_rows": class_rows(summary),
        "confusion_rows": confusion_rows(summary),
    }


# A finished job's learning curve, small enough for its row in the jobs table.
CURVE_WIDTH, CURVE_HEIGHT, CURVE_PAD = 160, 40, 3


@dataclass(frozen=True)
class EpochCurve:
    loss_points: str  # SVG polyline points, the loss scaled to its own largest value
    validation_points: str  # validation accuracy, 0 at the bottom and 100% at the top
    summary: str  # the same in words, for screen readers and the title


def epoch_curve(epochs: list[dict]) -> EpochCurve | None:
    """The per-epoch loss and validation accuracy a finished job recorded, as two lines; None before that."""
    if len(epochs) < 2:
        return None
    largest_loss = max(epoch["loss"] for epoch in epochs) or 1.0

    def points(values: list[float]) -> str:
        step = (CURVE_WIDTH - 2 * CURVE_PAD) / (len(values) - 1)
        height = CURVE_HEIGHT - 2 * CURVE_PAD
        return " ".join(
            f"{CURVE_PAD + index * step:.1f},{CURVE_PAD + (1 - value) * height:.1f}"
            for index, value in enumerate(values)
        )

    validation = [epoch["validation_accuracy"] or 0.0 for epoch in epochs]
    summary = (
        f"{len(epochs)} epochs: loss {epochs[0]['loss']:.3f} to {epochs[-1]['loss']:.3f}, "
        f"validation accuracy {validation[0]:.1%} to {validation[-1]:.1%} (best {max(validation):.1%})"
    )
    return EpochCurve(
        loss_points=points([epoch["loss"] / largest_loss for epoch in epochs]),
        validation_points=points(validation),
        summary=summary,
    )


# A video's emotion timeline, one chart per track; more room on the left than the day chart for "100%",
# which a phone draws at twice the size (accuracy.css).
TIMELINE_AREA = PlotArea(width=640, height=240, left=72, right=604, top=12, bottom=200)
# A line breaks where the face was not found for longer than this many sample intervals.
TIMELINE_GAP_SAMPLES = 1.5


def timestamp(seconds: float) -> str:
    """A time in a video as people read it: 75.4 as "1:15.4"."""
    minutes, rest = divmod(round(seconds, 1), 60)
    return f"{int(minutes)}:{rest:04.1f}"


@dataclass(frozen=True)
class TimelineMark:
    """One sampled frame's point, at the probability of the expression predicted there: a link to that frame."""

    x: float
    y: float
    point: TimelinePoint


@dataclass(frozen=True)
class TimelineLine:
    label: str
    path: str  # the SVG path's `d`: one stroke per stretch without a gap


@dataclass(frozen=True)
class TimelineChart(PlotArea):
    lines: list[TimelineLine]  # each expression's probability over time
    marks: list[TimelineMark]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    description: str  # the chart in words, for its aria-label


def timeline_chart(track: Track, *, duration: float, samples_per_second: float) -> TimelineChart:
    """One face's seven probabilities over the video's whole length (so every track's chart shares its
    time axis), and a mark per frame on the expression predicted there."""
    span = max(duration, track.last_time)

    def x_of(seconds: float) -> float:
        return round(TIMELINE_AREA.x_at(seconds / span if span else 0.5), 1)

    def y_of(probability: float) -> float:
        return round(TIMELINE_AREA.y_at(probability), 1)

    gap = TIMELINE_GAP_SAMPLES / samples_per_second
    lines = []
    for label in EXPRESSIONS:
        strokes, previous = [], None
        for point in track.points:
            command = "M" if previous is None or point.time - previous > gap else "L"
            strokes.append(f"{command}{x_of(point.time)},{y_of(point.probabilities.get(label, 0.0))}")
            previous = point.time
        lines.append(TimelineLine(label=label, path=" ".join(strokes)))
    shares = ", ".join(f"{label} in {share:.0%}" for label, share in track.label_shares[:3])
    frames = len(track.points)
    description = (
        f"Track {track.number}, in {frames} frame{'s' if frames != 1 else ''} from {timestamp(track.first_time)} "
        f"to {timestamp(track.last_time)}: {shares} of them. Each line is one expression's probability over "
        "time; each dot, a frame, at the expression predicted there. The table beside it lists every frame."
    )
    return TimelineChart(
        **vars(TIMELINE_AREA),
        lines=lines,
        marks=[TimelineMark(x=x_of(point.time), y=y_of(point.confidence), point=point) for point in track.points],
        x_ticks=[
            Tick(position=x_of(span * step / (X_TICKS - 1)), text=timestamp(span * step / (X_TICKS - 1)))
            for step in range(X_TICKS)
        ],
        y_ticks=[Tick(position=y_of(share), text=f"{share:.0%}") for share in (0, 0.5, 1)],
        description=description,
    )
