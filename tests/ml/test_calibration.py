"""Calibration and the multi-pass predictor, on hand-made numbers and the real tiny model."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ml.calibrate import calibrate_model
from ml.calibration import confidence_bins, expected_calibration_error, fit_temperature, softmax
from ml.export import export_run
from ml.labels import EXPRESSIONS
from ml.model_folder import InferenceSettings, ModelFolderError, read_metadata
from ml.predictor import ModelLoadError, Predictor
from ml.testing import synthetic_crops, train_tiny_model
from ml.train import TrainConfig, train


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("models"))


def with_inference(source, target, **inference):
    """A copy of a model folder whose model.json reads its net with these settings."""
    shutil.copytree(source, target)
    metadata = json.loads((target / "model.json").read_text())
    (target / "model.json").write_text(json.dumps(metadata | {"inference": inference}))
    return target


def test_expected_calibration_error_of_hand_made_predictions() -> None:
    # Four images at 90% confidence, three right: a gap of 15 points. Four at 60%, all right: 40 points.
    probabilities = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 4)
    labels = np.array([0, 0, 0, 1, 0, 0, 0, 0])

    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(0.5 * 0.15 + 0.5 * 0.4)
    counts = [confidence_bin.count for confidence_bin in confidence_bins(probabilities, labels, bins=10)]
    assert counts[5] == 4 and counts[8] == 4 and sum(counts) == 8


def test_fit_temperature_recovers_the_temperature_that_made_the_labels() -> None:
    generator = np.random.default_rng(0)
    true_logits = generator.normal(0, 2, (20_000, 7))
    labels = np.array([generator.choice(7, p=row) for row in softmax(true_logits)])

    # A net three times too sure of itself: its logits are the true ones times 3.
    assert fit_temperature(3 * true_logits, labels) == pytest.approx(3.0, rel=0.05)


def test_temperature_changes_confidence_but_not_labels(tiny_model_dir, tmp_path) -> None:
    crops = synthetic_crops(64, seed=4).images
    plain = Predictor.load(tiny_model_dir).predict(crops)
    softened = Predictor.load(with_inference(tiny_model_dir, tmp_path / "t", temperature=2.5)).predict(crops)

    np.testing.assert_allclose(softened.sum(axis=1), 1.0, rtol=1e-5)
    assert (softened.argmax(axis=1) == plain.argmax(axis=1)).all()
    assert (softened.max(axis=1) < plain.max(axis=1)).all()


def test_a_mirrored_pass_averages_the_crop_and_its_mirror_image(tiny_model_dir, tmp_path) -> None:
    crops = synthetic_crops(16, seed=2).images
    crops[:, :, :24] = 0  # left half black: the mirror image differs from the crop
    plain = Predictor.load(tiny_model_dir)
    mirrored = Predictor.load(with_inference(tiny_model_dir, tmp_path / "m", mirror=True))

    expected = (plain.logits(crops) + plain.logits(crops[:, :, ::-1])) / 2
    np.testing.assert_allclose(mirrored.logits(crops), expected, atol=1e-5)
    assert not np.allclose(plain.logits(crops), plain.logits(crops[:, :, ::-1]), atol=1e-3)
    np.testing.assert_allclose(mirrored.predict(crops).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "inference",
    [{"temperature": 0}, {"temperature": "hot"}, {"temperature": float("nan")}, {"mirror": "yes"}, {"passes": 3}],
)
def test_a_folder_with_unusable_inference_settings_is_refused(tiny_model_dir, tmp_path, inference) -> None:
    folder = with_inference(tiny_model_dir, tmp_path / "bad", **inference)

    with pytest.raises(ModelFolderError, match="inference"):
        read_metadata(folder)
    with pytest.raises(ModelLoadError, match="inference"):
        Predictor.load(folder)


def test_calibrate_writes_a_new_version_with_the_fitted_temperature(tiny_model_dir, tmp_path) -> None:
    data_dir = tmp_path / "crops"
    crops = synthetic_crops(70, seed=11)
    for index, (pixels, label) in enumerate(zip(crops.images, crops.labels, strict=True)):
        (data_dir / EXPRESSIONS[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(data_dir / EXPRESSIONS[label] / f"{index}.png")

    folder = calibrate_model(tiny_model_dir, f"folder:{data_dir}", tmp_path / "models", version="tiny-c", mirror=True)

    metadata = read_metadata(folder)
    assert metadata["version"] == "tiny-c" and metadata["parent"] == "tiny-1"
    assert metadata["inference"]["mirror"] is True
    assert metadata["inference"]["temperature"] == metadata["calibration"]["temperature"] > 0
    assert metadata["calibration"]["count"] == 70
    assert metadata["calibration"]["computed_in"] in ("bfloat16", "float32")
    after = metadata["calibration"]["expected_calibration_error_after"]
    assert after <= metadata["calibration"]["expected_calibration_error_before"] + 1e-9
    assert Predictor.load(folder).settings.mirror
    with pytest.raises(FileExistsError):
        calibrate_model(tiny_model_dir, f"folder:{data_dir}", tmp_path / "models", version="tiny-c", mirror=True)


@pytest.mark.slow  # it fine-tunes
def test_a_fine_tune_is_read_as_its_parent_is(tiny_model_dir, tmp_path) -> None:
    parent = with_inference(tiny_model_dir, tmp_path / "parent", mirror=True, temperature=1.7)
    config = TrainConfig(epochs=1, batch_size=16, learning_rate=0.01, init_from=str(parent))
    train(config, synthetic_crops(32, seed=3), synthetic_crops(16, seed=4), tmp_path / "run")

    child = export_run(tmp_path / "run", tmp_path / "models", version="tiny-child")

    assert Predictor.load(child).settings == InferenceSettings(mirror=True, temperature=1.7)
