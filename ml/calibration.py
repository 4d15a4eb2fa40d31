"""Confidence that means what it says: temperature scaling, and the measures of how far it holds.

A net trained with cross-entropy is overconfident: v4 says 90% where it is right far less often.
Dividing its logits by one temperature, fitted on data the net never trained on (FER2013
PublicTest), fixes most of that without changing any prediction's label (Guo et al., "On
Calibration of Modern Neural Networks", ICML 2017). The expected calibration error takes the top
prediction of each image, sorts them into CALIBRATION_BINS equal bins of confidence, and averages
each bin's gap between confidence and accuracy, weighted by its share of the images.
"""

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CALIBRATION_BINS = 15
# Where the temperature is looked for; golden-section search on its logarithm.
TEMPERATURE_RANGE = (0.05, 20.0)
SEARCH_STEPS = 60


@dataclass(frozen=True)
class ConfidenceBin:
    low: float
    high: float
    count: int
    confidence: float | None  # the mean top probability of its images; None when it is empty
    accuracy: float | None


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    shifted = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def confidence_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> list[ConfidenceBin]:
    """The images sorted by their top probability into `bins` equal bins, with each bin's confidence and accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bins are (low, high], the first also taking 0: as in Guo et al.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    result = []
    for number in range(bins):
        members = index == number
        count = int(members.sum())
        result.append(
            ConfidenceBin(
                low=float(edges[number]),
                high=float(edges[number + 1]),
                count=count,
                confidence=float(confidence[members].mean()) if count else None,
                accuracy=float(correct[members].mean()) if count else None,
            )
        )
    return result


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    total = len(labels)
    if total == 0:
        raise ValueError("no predictions to measure")
    return float(
        sum(
            b.count / total * abs(b.confidence - b.accuracy)
            for b in confidence_bins(probabilities, labels, bins)
            if b.count
        )
    )


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    scaled = logits.astype(np.float64) / temperature
    log_normaliser = np.log(np.exp(scaled - scaled.max(axis=1, keepdims=True)).sum(axis=1)) + scaled.max(axis=1)
    return float(np.mean(log_normaliser - scaled[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `labels` (convex in 1/temperature, so the
    one-dimensional search finds it; one at the edge of TEMPERATURE_RANGE would mean the logits are useless)."""
    if len(labels) == 0:
        raise ValueError("no predictions to fit a temperature on")
    low, high = (math.log(value) for value in TEMPERATURE_RANGE)
    ratio = (math.sqrt(5) - 1) / 2
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    loss_left = negative_log_likelihood(logits, labels, math.exp(left))
    loss_right = negative_log_likelihood(logits, labels, math.exp(right))
    for _ in range(SEARCH_STEPS):
        if loss_left < loss_right:
            high, right, loss_right = right, left, loss_left
            left = high - ratio * (high - low)
            loss_left = negative_log_likelihood(logits, labels, math.exp(left))
        else:
            low, left, loss_left = left, right, loss_right
            right = low + ratio * (high - low)
            loss_right = negative_log_likelihood(logits, labels, math.exp(right))
    return round(math.exp((low + high) / 2), 4)


# The picture: accuracy against confidence per bin, the diagonal being perfect calibration.
PLOT = 360
MARGIN = 56
TITLE = 24  # above the plot: the title and the error


def draw_reliability_diagram(probabilities: np.ndarray, labels: np.ndarray, title: str) -> Image.Image:
    """Bars of each confidence bin's accuracy over the diagonal of perfect calibration, with the ECE."""
    bins = confidence_bins(probabilities, labels)
    image = Image.new("RGB", (PLOT + 2 * MARGIN, PLOT + 2 * MARGIN + TITLE), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    small = ImageFont.load_default(size=11)
    left, top, bottom = MARGIN, MARGIN + TITLE, MARGIN + TITLE + PLOT

    def at(x: float, y: float) -> tuple[float, float]:
        return left + x * PLOT, bottom - y * PLOT

    draw.text((8, 6), title, fill="black", font=font)
    error = expected_calibration_error(probabilities, labels)
    draw.text((8, 24), f"expected calibration error {error:.3f}, {len(labels)} images", fill="black", font=font)
    total = len(labels)
    for confidence_bin in bins:
        if not confidence_bin.count:
            continue
        x0, y0 = at(confidence_bin.low, confidence_bin.accuracy)
        x1, _ = at(confidence_bin.high, 0)
        draw.rectangle((x0 + 1, y0, x1 - 1, bottom), fill=(66, 133, 204))
        # The gap to the bin's own confidence, outlined in red.
        _, yc = at(0, confidence_bin.confidence)
        draw.rectangle((x0 + 1, min(y0, yc), x1 - 1, max(y0, yc)), outline=(200, 60, 60))
        share = confidence_bin.count / total
        draw.text(((x0 + x1) / 2, bottom + 4), f"{share:.0%}", fill="dimgray", font=small, anchor="mt")
    draw.line((*at(0, 0), *at(1, 1)), fill="gray", width=1)
    draw.rectangle((left, top, left + PLOT, bottom), outline="gray")
    for value in (0, 0.5, 1):
        draw.text((left - 6, at(0, value)[1]), f"{value:.0%}", fill="black", font=small, anchor="rm")
        draw.text((at(value, 0)[0], bottom + 20), f"{value:.0%}", fill="black", font=small, anchor="mt")
    draw.text(
        (left + PLOT / 2, bottom + 36), "confidence (share of images per bin)", fill="black", font=font, anchor="mt"
    )
    draw.text((8, top - 18), "accuracy", fill="black", font=font)
    return image
