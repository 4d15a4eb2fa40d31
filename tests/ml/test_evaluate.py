"""ml.evaluate's metrics on hand-made predictions whose scores are worked out by hand, its picture and its CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.evaluate import DARKEST, EMPTY_ROW, draw_confusion_matrix, evaluate_predictions, format_metrics, main
from ml.labels import EXPRESSIONS, INDEX_OF, NUM_CLASSES
from ml.predictor import Predictor

A, D, H, N, S = (INDEX_OF[label] for label in ("angry", "disgust", "happy", "neutral", "surprise"))

# 11 faces: angry 3, disgust 2 (never predicted), happy 4, neutral 2; fear and sad absent;
# surprise absent but predicted once.
TRUE = [A, A, A, D, D, H, H, H, H, N, N]
PREDICTED = [A, A, H, H, H, H, H, H, A, N, S]


def probabilities_for(predictions: list[int]) -> np.ndarray:
    """Probabilities whose most likely class is each prediction."""
    probabilities = np.full((len(predictions), NUM_CLASSES), 0.3 / (NUM_CLASSES - 1), np.float32)
    probabilities[np.arange(len(predictions)), predictions] = 0.7
    return probabilities


@pytest.fixture
def metrics() -> dict:
    return evaluate_predictions(np.array(TRUE), probabilities_for(PREDICTED))


def test_accuracy_counts_the_argmax_hits(metrics: dict) -> None:
    # Hits: angry 2, happy 3, neutral 1.
    assert metrics["count"] == 11
    assert metrics["accuracy"] == pytest.approx(6 / 11)


def test_per_class_figures_match_the_hand_count(metrics: dict) -> None:
    per_class = metrics["per_class"]
    # angry: 3 predicted, 2 right, of 3.
    assert per_class["angry"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3, "predicted": 3}
    )
    # happy: 6 predicted, 3 right, of 4; F1 = 2 * 0.5 * 0.75 / 1.25.
    assert per_class["happy"] == pytest.approx(
        {"precision": 0.5, "recall": 0.75, "f1": 0.6, "support": 4, "predicted": 6}
    )
    # neutral: 1 predicted, right, of 2.
    assert per_class["neutral"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2, "predicted": 1}
    )


def test_class_never_predicted_has_no_precision_and_f1_zero(metrics: dict) -> None:
    assert metrics["per_class"]["disgust"] == {
        "precision": None,
        "recall": 0.0,
        "f1": 0.0,
        "support": 2,
        "predicted": 0,
    }


def test_class_absent_from_the_truth_has_no_recall_or_f1(metrics: dict) -> None:
    assert metrics["per_class"]["fear"] == {"precision": None, "recall": None, "f1": None, "support": 0, "predicted": 0}
    # Predicted once, wrongly: precision 0.
    assert metrics["per_class"]["surprise"] == {
        "precision": 0.0,
        "recall": None,
        "f1": None,
        "support": 0,
        "predicted": 1,
    }


def test_macro_figures_average_the_classes_present(metrics: dict) -> None:
    # angry, disgust, happy, neutral.
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0 + 0.6 + 2 / 3) / 4)
    assert metrics["balanced_accuracy"] == pytest.approx((2 / 3 + 0 + 0.75 + 0.5) / 4)


def test_confusion_matrix_rows_are_true_and_columns_predicted(metrics: dict) -> None:
    matrix = np.array(metrics["confusion_matrix"])

    assert metrics["labels"] == list(EXPRESSIONS)
    assert matrix.shape == (NUM_CLASSES, NUM_CLASSES)
    assert matrix[A].tolist() == [2, 0, 0, 1, 0, 0, 0]
    assert matrix[D].tolist() == [0, 0, 0, 2, 0, 0, 0]
    assert matrix[H].tolist() == [1, 0, 0, 3, 0, 0, 0]
    assert matrix[N].tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert matrix.sum() == 11


def test_metrics_survive_a_json_round_trip(metrics: dict) -> None:
    assert json.loads(json.dumps(metrics)) == metrics


def test_perfect_predictions_score_one() -> None:
    labels = np.arange(NUM_CLASSES).repeat(3)

    metrics = evaluate_predictions(labels, probabilities_for(labels.tolist()))

    assert metrics["accuracy"] == metrics["macro_f1"] == metrics["balanced_accuracy"] == 1.0
    assert np.array_equal(metrics["confusion_matrix"], np.eye(NUM_CLASSES) * 3)


@pytest.mark.parametrize(
    ("labels", "probabilities", "message"),
    [
        ([0, 1], np.ones((3, NUM_CLASSES)), "2 labels for 3"),
        ([0], np.ones((1, 5)), r"\(N, 7\)"),
        ([7], np.ones((1, NUM_CLASSES)), "indices"),
        ([], np.ones((0, NUM_CLASSES)), "no predictions"),
    ],
)
def test_mismatched_inputs_are_rejected(labels: list[int], probabilities: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_predictions(np.array(labels, dtype=np.int64), probabilities)


def test_text_table_marks_undefined_figures(metrics: dict) -> None:
    table = format_metrics(metrics)

    assert "accuracy 0.5455" in table
    fear_row = next(line for line in table.splitlines() if line.startswith("fear"))
    assert fear_row.split() == ["fear", "-", "-", "-", "0", "0"]


def test_confusion_matrix_png_is_written_and_readable(tmp_path: Path) -> None:
    # Every class perfect but fear, which is absent: its row is drawn empty.
    labels = [index for index in range(NUM_CLASSES) if EXPRESSIONS[index] != "fear" for _ in range(2)]
    metrics = evaluate_predictions(np.array(labels), probabilities_for(labels))

    draw_confusion_matrix(metrics, title="tiny on test").save(tmp_path / "confusion.png")

    with Image.open(tmp_path / "confusion.png") as image:
        assert image.format == "PNG"
        assert image.mode == "RGB"
        colours = {colour for _, colour in image.getcolors(maxcolors=1 << 16)}
    assert tuple(DARKEST) in colours  # a row all on its diagonal
    assert EMPTY_ROW in colours


@pytest.mark.slow
def test_cli_scores_a_model_on_a_folder_dataset(tmp_path: Path) -> None:
    from ml.testing import synthetic_crops, train_tiny_model

    model_dir = train_tiny_model(tmp_path / "models")
    crops = synthetic_crops(28, seed=2)
    for number, (crop, label) in enumerate(zip(crops.images, crops.labels, strict=True)):
        path = tmp_path / "faces" / EXPRESSIONS[label] / f"{number}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(path)

    main(
        [
            *("--model", str(model_dir), "--data", f"folder:{tmp_path / 'faces'}"),
            *("--json", str(tmp_path / "metrics.json"), "--png", str(tmp_path / "confusion.png")),
        ]
    )

    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["count"] == 28
    assert record["model_version"] == "tiny-1"
    assert record["computed_in"] == Predictor.load(model_dir).computes_in
    assert np.array(record["confusion_matrix"]).sum(axis=1).tolist() == np.bincount(crops.labels, minlength=7).tolist()
    with Image.open(tmp_path / "confusion.png") as image:
        assert image.format == "PNG"


def test_cli_reports_missing_data_or_model_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "faces" / "happy").mkdir(parents=True)
    Image.new("L", (48, 48), 90).save(tmp_path / "faces" / "happy" / "one.png")

    with pytest.raises(SystemExit, match="ml.evaluate: .*nowhere"):
        main(["--model", str(tmp_path / "models"), "--data", f"folder:{tmp_path / 'nowhere'}"])
    with pytest.raises(SystemExit, match="ml.evaluate: .*no-model"):
        main(["--model", str(tmp_path / "no-model"), "--data", f"folder:{tmp_path / 'faces'}"])
