"""Whether a candidate model may replace the active one: a paired comparison on the same faces.

Both versions classify the same faces, so their outcomes are paired: what matters is the faces
one gets right and the other wrong. The difference in accuracy gets a 95% confidence interval
by Newcombe's hybrid score method for paired proportions (method 10 of Newcombe, "Improved
confidence intervals for the difference between binomial proportions based on paired data",
Statistics in Medicine 17, 1998), built from each accuracy's Wilson score interval; it keeps
its coverage with few faces, where the normal approximation does not.

The gate is a non-inferiority test: the candidate passes a comparison when the interval's lower
end lies above -margin, i.e. it is not worse than the active version by more than the margin,
at 95% confidence (the lower end of a two-sided 95% interval: a one-sided test at 2.5%). On the
faces the job was made for (held-out reviews) it must also be ahead, on the point estimate: a tie
never replaces the active version.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

Z_95 = 1.959963984540054  # the standard normal quantile for a two-sided 95% interval


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class PairedComparison:
    count: int
    candidate_accuracy: float
    active_accuracy: float
    candidate_interval: Interval
    active_interval: Interval
    difference: float  # candidate minus active
    difference_interval: Interval
    only_candidate_right: int
    only_active_right: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    words: str  # for staff: what the comparison showed and why it passes or not


def wilson_interval(successes: int, count: int, z: float = Z_95) -> Interval:
    """The Wilson score interval of a proportion; [0, 1] when there is nothing to go on."""
    if count == 0:
        return Interval(0.0, 1.0)
    proportion = successes / count
    centre = proportion + z * z / (2 * count)
    spread = z * math.sqrt(proportion * (1 - proportion) / count + z * z / (4 * count * count))
    scale = 1 + z * z / count
    return Interval(max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale))


def compare_paired(candidate_correct: np.ndarray, active_correct: np.ndarray) -> PairedComparison:
    """Both versions' accuracy on the same faces, from each face's right-or-wrong, and their difference."""
    candidate_correct = np.asarray(candidate_correct, dtype=bool)
    active_correct = np.asarray(active_correct, dtype=bool)
    if candidate_correct.shape != active_correct.shape or candidate_correct.ndim != 1:
        raise ValueError("both versions' outcomes must be on the same faces")
    count = len(candidate_correct)
    both = int(np.sum(candidate_correct & active_correct))
    only_candidate = int(np.sum(candidate_correct & ~active_correct))
    only_active = int(np.sum(~candidate_correct & active_correct))
    neither = count - both - only_candidate - only_active
    candidate_interval = wilson_interval(both + only_candidate, count)
    active_interval = wilson_interval(both + only_active, count)
    if count == 0:
        return PairedComparison(0, 0.0, 0.0, candidate_interval, active_interval, 0.0, Interval(-1.0, 1.0), 0, 0)
    candidate, active = (both + only_candidate) / count, (both + only_active) / count
    # The correlation of the two outcomes; 0 when either margin is empty (e.g. one version always right).
    denominator = math.sqrt(
        (both + only_candidate) * (only_active + neither) * (both + only_active) * (only_candidate + neither)
    )
    phi = (both * neither - only_candidate * only_active) / denominator if denominator else 0.0
    low_candidate, high_candidate = candidate - candidate_interval.low, candidate_interval.high - candidate
    low_active, high_active = active - active_interval.low, active_interval.high - active
    difference = candidate - active
    below = math.sqrt(max(0.0, low_candidate**2 - 2 * phi * low_candidate * high_active + high_active**2))
    above = math.sqrt(max(0.0, high_candidate**2 - 2 * phi * high_candidate * low_active + low_active**2))
    return PairedComparison(
        count=count,
        candidate_accuracy=candidate,
        active_accuracy=active,
        candidate_interval=candidate_interval,
        active_interval=active_interval,
        difference=difference,
        difference_interval=Interval(max(-1.0, difference - below), min(1.0, difference + above)),
        only_candidate_right=only_candidate,
        only_active_right=only_active,
    )


def judge(comparison: PairedComparison, *, margin: float, must_be_ahead: bool, what: str) -> Verdict:
    """Whether the candidate passes this comparison, in words that give the figures behind it."""
    figures = (
        f"on {comparison.count:,} {what} the candidate reads {_percent_with_interval(comparison, 'candidate')}, "
        f"the active version {_percent_with_interval(comparison, 'active')}; difference "
        f"{comparison.difference * 100:+.1f} points (95% interval {comparison.difference_interval.low * 100:+.1f} "
        f"to {comparison.difference_interval.high * 100:+.1f})"
    )
    if comparison.count == 0:
        return Verdict(False, f"there are no {what} to compare on")
    low, high = comparison.difference_interval.low, comparison.difference_interval.high
    if high < -margin:
        return Verdict(False, f"{figures}: worse by more than the margin of {margin * 100:.1f} points")
    if low <= -margin and high < 0:
        return Verdict(False, f"{figures}: worse, possibly by more than the margin of {margin * 100:.1f} points")
    if low <= -margin:
        return Verdict(
            False,
            f"{figures}: too few faces to tell, since it may be worse by more than the margin of "
            f"{margin * 100:.1f} points",
        )
    if must_be_ahead and comparison.difference == 0:
        return Verdict(False, f"{figures}: a tie, and a tie keeps the active version")
    if must_be_ahead and comparison.difference < 0:
        return Verdict(
            False,
            f"{figures}: behind by {-comparison.difference * 100:.1f} points, within the margin; "
            "only a candidate that is ahead replaces the active version",
        )
    return Verdict(True, f"{figures}: not worse by more than {margin * 100:.1f} points at 95% confidence")


def _percent_with_interval(comparison: PairedComparison, which: str) -> str:
    accuracy = getattr(comparison, f"{which}_accuracy")
    interval = getattr(comparison, f"{which}_interval")
    return f"{accuracy:.1%} ({interval.low:.1%}-{interval.high:.1%})"
