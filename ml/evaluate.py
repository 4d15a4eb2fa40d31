"""Score a model: metrics from true labels and predicted probabilities, a confusion-matrix picture, a CLI.

    python -m ml.evaluate --model MODEL_DIR --data SPEC [--faces find|crops] [--json OUT] [--png OUT]

SPEC is any `ml.data.read_dataset` spec (fer2013:PATH[:USAGE,...], folder:, jaffe:, ckplus:).

A ratio with nothing to divide by is null, not 0, so "never predicted" is not read as
"always wrong": a class the model never predicts has precision null; a class absent
from the true labels has recall and F1 null. A class that is present but never predicted
has F1 0, since its recall is 0. Macro-F1 and balanced accuracy (mean recall) average
over the classes present in the true labels, so a set without an expression (CK+ has
no neutral) is scored on the expressions it has; errors into an absent class still
count, as lost recall of the true class.
"""

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ml.calibration import draw_reliability_diagram, expected_calibration_error
from ml.data import FACE_CROPPERS, LabelledImages, read_dataset
from ml.labels import EXPRESSIONS, NUM_CLASSES
from ml.predictor import ModelLoadError, Predictor

logger = logging.getLogger(__name__)

PREDICT_BATCH = 256  # crops per Predictor call: bounds the activations' memory on large sets


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """(7, 7) int64 counts: rows are true labels, columns predicted labels, both in EXPRESSIONS order."""
    counts = np.bincount(labels * NUM_CLASSES + predictions, minlength=NUM_CLASSES * NUM_CLASSES)
    return counts.reshape(NUM_CLASSES, NUM_CLASSES)


def evaluate_predictions(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, macro-F1, balanced accuracy, per-class precision/recall/F1/support and the confusion matrix.

    `labels` (N,) indices into EXPRESSIONS; `probabilities` (N, 7). The result holds only
    JSON types: per-class figures keyed by label name, the matrix as lists of counts.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES:
        raise ValueError(f"probabilities must be (N, {NUM_CLASSES}), got {probabilities.shape}")
    if labels.shape != (len(probabilities),):
        raise ValueError(f"{labels.size} labels for {len(probabilities)} predictions")
    if len(labels) == 0:
        raise ValueError("no predictions to evaluate")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError("labels must be indices into EXPRESSIONS")

    matrix = confusion_matrix(labels, probabilities.argmax(axis=1))
    correct = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    per_class = {}
    for index, label in enumerate(EXPRESSIONS):
        precision = _ratio(correct[index], predicted[index])
        recall = _ratio(correct[index], support[index])
        per_class[label] = {
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "support": int(support[index]),
            "predicted": int(predicted[index]),
        }
    present = [per_class[label] for label in EXPRESSIONS if per_class[label]["support"]]
    return {
        "count": int(len(labels)),
        "accuracy": float(correct.sum() / len(labels)),
        "macro_f1": float(np.mean([figures["f1"] for figures in present])),
        "balanced_accuracy": float(np.mean([figures["recall"] for figures in present])),
        "expected_calibration_error": expected_calibration_error(probabilities, labels),
        "per_class": per_class,
        "labels": list(EXPRESSIONS),
        "confusion_matrix": matrix.tolist(),  # rows true, columns predicted, in `labels` order
    }


def in_batches(function: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
    """`function`'s (N, 7) output for any number of crops, computed PREDICT_BATCH at a time."""
    parts = [function(images[start : start + PREDICT_BATCH]) for start in range(0, len(images), PREDICT_BATCH)]
    return np.concatenate(parts) if parts else np.empty((0, NUM_CLASSES), np.float32)


def predict_all(predictor: Predictor, images: np.ndarray, *, kept_in: Path | None = None) -> np.ndarray:
    """The predictor's (N, 7) probabilities for any number of crops.

    With `kept_in`, a folder: they are kept there (`keep_predictions`), and read from there when the same
    predictor is asked about the same crops again. A kept file that cannot be read, or holds another shape, is
    computed again.
    """
    path = None if kept_in is None else _kept_path(predictor, images, kept_in)
    if path is not None:
        try:
            kept = np.load(path)
            if kept.shape == (len(images), NUM_CLASSES):
                return kept
        except (OSError, ValueError, EOFError):
            pass  # not kept yet, or damaged: computed again and written over
    probabilities = in_batches(predictor.predict, images)
    if path is not None:
        _write_kept(path, probabilities)
    return probabilities


def keep_predictions(predictor: Predictor, images: np.ndarray, probabilities: np.ndarray, folder: Path) -> None:
    """Keep the predictor's probabilities for these crops in `folder`, named by the predictor's fingerprint and
    the crops' SHA-256, for `predict_all(kept_in=folder)` to read. A predictor without a fingerprint is never kept."""
    path = _kept_path(predictor, images, folder)
    if path is not None:
        _write_kept(path, probabilities)


def _kept_path(predictor: Predictor, images: np.ndarray, folder: Path) -> Path | None:
    fingerprint = predictor.fingerprint  # computed at each reading (it hashes the predictor's identity): once here
    if fingerprint is None:
        return None
    crops = hashlib.sha256(f"{images.shape} {images.dtype}".encode() + np.ascontiguousarray(images).tobytes())
    return Path(folder) / f"{fingerprint[:32]}-{crops.hexdigest()[:32]}.npy"


def _write_kept(path: Path, probabilities: np.ndarray) -> None:
    """Write the file whole or not at all, whoever else writes it at once (workers on several hosts share it).
    Keeping is a saving, not a result: a folder that cannot take it (full, read-only) costs a warning only."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "wb") as file:
            np.save(file, probabilities)
        os.chmod(temporary, 0o644)  # mkstemp's file is private to its creator; predictions are not secret
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        logger.warning("Predictions not kept in %s: %s", path.parent, error)
    finally:
        if temporary is not None:  # not moved into place: failed, or interrupted (a worker told to stop)
            Path(temporary).unlink(missing_ok=True)


def evaluate_model(predictor: Predictor, data: LabelledImages) -> dict:
    """`evaluate_predictions` of the predictor's probabilities for the data's crops."""
    return evaluate_predictions(data.labels, predict_all(predictor, data.images))


def _ratio(numerator: int, denominator: int) -> float | None:
    return float(numerator / denominator) if denominator else None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if recall is None:
        return None
    if recall == 0:
        return 0.0  # also when precision is None: a present class never predicted
    return 2 * precision * recall / (precision + recall)


def format_metrics(metrics: dict) -> str:
    """A plain-text table of an `evaluate_predictions` result, for a terminal."""

    def cell(value: float | None) -> str:
        return "     -" if value is None else f"{value:6.3f}"

    lines = [
        f"{metrics['count']} images: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
        f"balanced accuracy {metrics['balanced_accuracy']:.4f}, "
        f"expected calibration error {metrics['expected_calibration_error']:.4f}",
        f"{'':10}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}{'predicted':>11}",
    ]
    for label, figures in metrics["per_class"].items():
        lines.append(
            f"{label:10}{cell(figures['precision']):>10}{cell(figures['recall']):>8}{cell(figures['f1']):>8}"
            f"{figures['support']:>9}{figures['predicted']:>11}"
        )
    return "\n".join(lines)


# The picture: one cell per (true, predicted) pair, shaded by the share of the true row.
CELL = 64
MARGIN_LEFT = 96
MARGIN_TOP = 84
RECALL_COLUMN = 72
MARGIN_BOTTOM = 36
LIGHTEST = np.array((247, 251, 255))
DARKEST = np.array((8, 48, 107))
EMPTY_ROW = (225, 225, 225)


def draw_confusion_matrix(metrics: dict, title: str | None = None) -> Image.Image:
    """The confusion matrix of an `evaluate_predictions` result as an RGB image.

    Rows are true labels, normalised so each cell shows the share of its row (and its
    count); the diagonal is each class's recall, repeated in a column on the right.
    """
    matrix = np.array(metrics["confusion_matrix"])
    labels = metrics["labels"]
    classes = len(labels)
    width = MARGIN_LEFT + classes * CELL + RECALL_COLUMN
    height = MARGIN_TOP + classes * CELL + MARGIN_BOTTOM
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    small = ImageFont.load_default(size=11)

    heading = f"accuracy {metrics['accuracy']:.1%}   macro-F1 {metrics['macro_f1']:.3f}   {metrics['count']} images"
    draw.text((8, 6), title or "confusion matrix", fill="black", font=font)
    draw.text((8, 26), heading, fill="black", font=font)
    draw.text((MARGIN_LEFT + classes * CELL / 2, MARGIN_TOP - 30), "predicted", fill="black", font=font, anchor="ms")
    draw.text((8, MARGIN_TOP - 14), "true", fill="black", font=font, anchor="ls")
    draw.text(
        (MARGIN_LEFT + classes * CELL + RECALL_COLUMN / 2, MARGIN_TOP - 8),
        "recall",
        fill="black",
        font=font,
        anchor="ms",
    )

    for column, label in enumerate(labels):
        centre = MARGIN_LEFT + column * CELL + CELL / 2
        draw.text((centre, MARGIN_TOP - 8), label, fill="black", font=small, anchor="ms")
    for row, label in enumerate(labels):
        top = MARGIN_TOP + row * CELL
        support = int(matrix[row].sum())
        draw.text((8, top + CELL / 2 - 7), label, fill="black", font=font, anchor="lm")
        draw.text((8, top + CELL / 2 + 9), f"n={support}", fill="dimgray", font=small, anchor="lm")
        for column in range(classes):
            left = MARGIN_LEFT + column * CELL
            box = (left, top, left + CELL - 1, top + CELL - 1)
            if support == 0:
                draw.rectangle(box, fill=EMPTY_ROW)
                continue
            share = matrix[row, column] / support
            colour = tuple(int(value) for value in np.round(LIGHTEST + share * (DARKEST - LIGHTEST)))
            draw.rectangle(box, fill=colour)
            ink = "white" if share > 0.5 else "black"
            draw.text((left + CELL / 2, top + CELL / 2 - 7), f"{share:.0%}", fill=ink, font=font, anchor="mm")
            draw.text(
                (left + CELL / 2, top + CELL / 2 + 10), str(matrix[row, column]), fill=ink, font=small, anchor="mm"
            )
        recall = metrics["per_class"][label]["recall"]
        draw.text(
            (MARGIN_LEFT + classes * CELL + RECALL_COLUMN / 2, top + CELL / 2),
            "-" if recall is None else f"{recall:.1%}",
            fill="black",
            font=font,
            anchor="mm",
        )
    grid_right = MARGIN_LEFT + classes * CELL - 1
    draw.rectangle((MARGIN_LEFT - 1, MARGIN_TOP - 1, grid_right + 1, MARGIN_TOP + classes * CELL), outline="gray")
    return image


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ml.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder (as written by ml.export)")
    parser.add_argument(
        "--data", required=True, help="fer2013:PATH[:USAGE,...], folder:PATH, jaffe:PATH or ckplus:PATH"
    )
    parser.add_argument(
        "--faces",
        choices=sorted(FACE_CROPPERS),
        help="crops: take each image whole as a face crop; find: find the face first, as the site does "
        "(default: the reader's own, crops for folder:, find for jaffe: and ckplus:)",
    )
    parser.add_argument("--json", type=Path, help="write the metrics here")
    parser.add_argument(
        "--png",
        type=Path,
        help="draw the confusion matrix here, and the reliability diagram beside it (*-reliability.png)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data, report = read_dataset(args.data, faces=args.faces)
        predictor = Predictor.load(args.model)
    except (ValueError, ModelLoadError) as error:  # bad data (DataError) or model: a message, no traceback
        sys.exit(f"ml.evaluate: {error}")
    print(report.summary(), flush=True)
    print(f"{predictor.version}, computing in {predictor.computes_in}", flush=True)
    probabilities = predict_all(predictor, data.images)
    metrics = evaluate_predictions(data.labels, probabilities)
    print(format_metrics(metrics), flush=True)

    if args.json:
        record = {
            "model": str(args.model),
            "model_version": predictor.version,
            "computed_in": predictor.computes_in,
            "data": args.data,
            "faces": args.faces,
            "skipped": {reason: len(paths) for reason, paths in report.skipped.items()},
            **metrics,
        }
        args.json.write_text(json.dumps(record, indent=2))
    if args.png:
        # The data's file name, not its whole path, fits a picture's title.
        title = f"{predictor.version} on {re.sub(r'[^:]*/', '', args.data)}"
        draw_confusion_matrix(metrics, title=title).save(args.png)
        reliability = args.png.with_name(f"{args.png.stem}-reliability{args.png.suffix}")
        draw_reliability_diagram(probabilities, data.labels, title).save(reliability)
    return 0


if __name__ == "__main__":
    sys.exit(main())
