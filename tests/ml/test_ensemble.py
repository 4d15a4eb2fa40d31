"""An ensemble version (ml.ensemble): several real tiny nets read as one, served, calibrated and fine-tuned."""

import dataclasses
import json

import numpy as np
import paddle
import pytest
from PIL import Image

from ml.calibrate import calibrate_model
from ml.ensemble import ensemble_model
from ml.ensemble import main as ensemble_main
from ml.labels import EXPRESSIONS
from ml.model import EnsembleNet, ExpressionNet, load_weights
from ml.model_folder import WEIGHTS_FILE, read_metadata
from ml.predictor import Predictor
from ml.testing import TINY_MODEL, synthetic_crops, train_tiny_model
from ml.train import TrainConfig, train

pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.slow]


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    models = tmp_path_factory.mktemp("members")
    return [train_tiny_model(models, version="tiny-a", epochs=2), train_tiny_model(models, version="tiny-b", epochs=3)]


@pytest.fixture(scope="module")
def ensemble_dir(members, tmp_path_factory):
    return ensemble_model(members, tmp_path_factory.mktemp("ensembles"), version="tiny-ensemble")


def logits_of(folder, crops) -> np.ndarray:
    return Predictor.load(folder, bfloat16=False).logits(crops)


def test_an_ensemble_reads_a_crop_as_the_mean_of_its_members_logits(members, ensemble_dir):
    crops = synthetic_crops(24, seed=4).images
    one, other = (logits_of(member, crops) for member in members)

    assert not np.allclose(one, other, atol=1e-3)  # two nets that differ, or the test shows nothing
    np.testing.assert_allclose(logits_of(ensemble_dir, crops), (one + other) / 2, atol=1e-4)


def test_an_ensembles_folder_names_its_members_and_holds_their_weights(members, ensemble_dir):
    metadata = read_metadata(ensemble_dir)

    assert [member["version"] for member in metadata["training"]["members"]] == ["tiny-a", "tiny-b"]
    assert metadata["model_config"] == [json.loads(json.dumps(dataclasses.asdict(TINY_MODEL)))] * 2
    net = EnsembleNet((TINY_MODEL, TINY_MODEL))
    load_weights(net, ensemble_dir / WEIGHTS_FILE)
    member = ExpressionNet(TINY_MODEL)
    load_weights(member, members[1] / WEIGHTS_FILE)
    np.testing.assert_array_equal(net.members[1].head[6].weight.numpy(), member.head[6].weight.numpy())


def test_a_calibrated_mirrored_ensemble_still_sums_to_one_and_keeps_its_labels(ensemble_dir, tmp_path):
    crops = synthetic_crops(40, seed=6)
    spec_dir = tmp_path / "data"
    for index, (image, label) in enumerate(zip(crops.images, crops.labels, strict=True)):
        folder = spec_dir / EXPRESSIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index}.png")

    calibrated = calibrate_model(ensemble_dir, f"folder:{spec_dir}", tmp_path, version="tiny-ensemble-c", mirror=True)
    predictor = Predictor.load(calibrated, bfloat16=False)
    probabilities = predictor.predict(crops.images)

    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    mirrored = (logits_of(ensemble_dir, crops.images) + logits_of(ensemble_dir, crops.images[..., ::-1])) / 2
    np.testing.assert_array_equal(probabilities.argmax(axis=1), mirrored.argmax(axis=1))


@pytest.mark.parametrize("frozen_stages", [1, 2])  # the tiny net has two stages: 2 trains the heads alone
def test_an_ensemble_is_fine_tuned_whole_and_its_frozen_stages_stay(ensemble_dir, tmp_path, frozen_stages):
    before = {name: value.numpy() for name, value in paddle.load(str(ensemble_dir / WEIGHTS_FILE)).items()}
    fine_tune = TrainConfig(
        epochs=2, batch_size=16, learning_rate=0.05, init_from=str(ensemble_dir), frozen_stages=frozen_stages
    )
    result = train(fine_tune, synthetic_crops(64, seed=5), synthetic_crops(32, seed=9), tmp_path / "run")
    after = {name: value.numpy() for name, value in paddle.load(str(result.best_weights)).items()}

    assert after.keys() == before.keys()
    for member in ("members.0.", "members.1."):
        np.testing.assert_array_equal(after[member + "features.0.0.weight"], before[member + "features.0.0.weight"])
        assert not np.array_equal(after[member + "head.6.weight"], before[member + "head.6.weight"])


def test_an_ensemble_needs_two_members_that_are_nets_not_ensembles(members, ensemble_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        ensemble_main(["--member", str(members[0]), "--out", str(tmp_path), "--version", "alone"])
    assert "at least two members" in str(exited.value)

    with pytest.raises(SystemExit) as exited:
        ensemble_main(
            ["--member", str(members[0]), "--member", str(ensemble_dir), "--out", str(tmp_path), "--version", "x"]
        )
    assert "is an ensemble already" in str(exited.value)
    assert not list(tmp_path.iterdir())
