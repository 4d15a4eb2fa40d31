"""Train -> export -> predict, end to end on a real tiny Paddle model."""

import ctypes
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import paddle
import pytest
from PIL import Image

from ml.augment import AugmentConfig, augment_batch
from ml.evaluate import predict_all
from ml.export import export_model, export_run
from ml.labels import EXPRESSIONS, INPUT_SIZE
from ml.model import ExpressionNet, ModelConfig, load_weights, predict_probabilities
from ml.model_folder import WEIGHTS_FILE, ModelFolderError
from ml.predictor import ModelLoadError, Predictor
from ml.runtime import computes_bfloat16, math_threads
from ml.testing import TINY_MODEL, synthetic_crops, train_tiny_model
from ml.train import (
    TrainConfig,
    TrainingStopped,
    class_weights,
    learning_rate_at,
    teacher_logits,
    teacher_targets,
    train,
)
from ml.train import main as train_main

# Each test trains or fine-tunes a real tiny model: a few seconds in all, still "slow" for a quick local run.
pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("models"))


def test_exported_model_learned_and_matches_the_eager_net(tiny_model_dir):
    predictor = Predictor.load(tiny_model_dir, bfloat16=False)
    crops = synthetic_crops(140, seed=7)
    probabilities = predictor.predict(crops.images)

    assert probabilities.shape == (140, len(EXPRESSIONS))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities.argmax(axis=1) == crops.labels).mean() > 0.3  # chance is 1/7
    net = ExpressionNet(TINY_MODEL)
    load_weights(net, tiny_model_dir / WEIGHTS_FILE)
    np.testing.assert_allclose(predict_probabilities(net, crops.images), probabilities, atol=1e-4)


def test_predictor_takes_any_batch_size_in_any_order(tiny_model_dir):
    predictor = Predictor.load(tiny_model_dir)
    crops = synthetic_crops(16, seed=3).images
    whole_batch = predictor.predict(crops)
    for size in (8, 1, 3, 16, 0):
        np.testing.assert_allclose(predictor.predict(crops[:size]), whole_batch[:size], atol=1e-5)


@pytest.mark.skipif(not computes_bfloat16(), reason="bfloat16 is used only on a CPU that computes in it")
def test_in_bfloat16_the_predictor_reads_crops_as_in_float32(tiny_model_dir):
    crops = synthetic_crops(140, seed=7).images
    in_float32 = Predictor.load(tiny_model_dir, bfloat16=False)
    in_bfloat16 = Predictor.load(tiny_model_dir, bfloat16=True)
    assert (in_float32.computes_in, in_bfloat16.computes_in) == ("float32", "bfloat16")

    exact, reduced = in_float32.predict(crops), in_bfloat16.predict(crops)
    assert not np.array_equal(exact, reduced)  # it really computed in another precision
    np.testing.assert_allclose(reduced, exact, atol=0.05)
    assert (reduced.argmax(axis=1) == exact.argmax(axis=1)).mean() >= 0.95


def test_without_bfloat16_arithmetic_the_predictor_computes_in_float32_and_refuses_to_be_asked_for_it(
    tiny_model_dir, monkeypatch
):
    crops = synthetic_crops(16, seed=7).images
    monkeypatch.setattr("ml.predictor.computes_bfloat16", lambda: False)

    by_default = Predictor.load(tiny_model_dir)
    assert by_default.computes_in == "float32"
    np.testing.assert_array_equal(
        by_default.predict(crops), Predictor.load(tiny_model_dir, bfloat16=False).predict(crops)
    )
    with pytest.raises(ValueError, match="AVX512_BF16"):
        Predictor.load(tiny_model_dir, bfloat16=True)


@pytest.mark.skipif(not computes_bfloat16(), reason="bfloat16 is used only on a CPU that computes in it")
def test_with_bfloat16_arithmetic_the_predictor_computes_in_it_by_default(tiny_model_dir):
    crops = synthetic_crops(16, seed=7).images
    by_default = Predictor.load(tiny_model_dir)
    assert by_default.computes_in == "bfloat16"
    np.testing.assert_array_equal(
        by_default.predict(crops), Predictor.load(tiny_model_dir, bfloat16=True).predict(crops)
    )


def test_predictor_refuses_crops_of_the_wrong_shape(tiny_model_dir):
    with pytest.raises(ValueError, match="crops must be"):
        Predictor.load(tiny_model_dir).predict(np.zeros((2, 32, 32), np.uint8))


def test_kept_predictions_are_read_back_for_the_same_net_and_crops_only(tiny_model_dir, tmp_path):
    predictor, kept = Predictor.load(tiny_model_dir, bfloat16=False), tmp_path / "kept"
    crops, other_crops = synthetic_crops(40, seed=3).images, synthetic_crops(40, seed=4).images
    computed = predict_all(predictor, crops, kept_in=kept)
    np.testing.assert_array_equal(computed, predict_all(predictor, crops))
    (path,) = kept.iterdir()
    np.testing.assert_array_equal(np.load(path), computed)

    # What is read back is the file's: kept predictions made to say something else are returned as they are.
    np.save(path, np.zeros_like(computed))
    assert not predict_all(predictor, crops, kept_in=kept).any()
    assert predict_all(predictor, other_crops, kept_in=kept).any()  # other crops: computed, kept beside
    # The same files read another way are another predictor: a folder calibrated to another temperature.
    metadata = json.loads((tiny_model_dir / "model.json").read_text())
    recalibrated = tmp_path / "recalibrated"
    recalibrated.mkdir()
    for name in ("inference.json", "inference.pdiparams", "weights.pdparams"):
        (recalibrated / name).write_bytes((tiny_model_dir / name).read_bytes())
    (recalibrated / "model.json").write_text(json.dumps(metadata | {"inference": {"temperature": 2.0}}))
    assert predict_all(Predictor.load(recalibrated, bfloat16=False), crops, kept_in=kept).any()
    assert len(list(kept.iterdir())) == 3

    path.write_bytes(b"not a NumPy file")  # damaged: computed again, and kept whole
    np.testing.assert_array_equal(predict_all(predictor, crops, kept_in=kept), computed)
    np.testing.assert_array_equal(np.load(path), computed)


def test_the_fingerprint_changes_with_the_arithmetic(tiny_model_dir):
    predictor = Predictor.load(tiny_model_dir, bfloat16=False)
    in_float32 = predictor.fingerprint
    predictor.computes_in = "bfloat16"  # as on a CPU that computes in it, whose predictions differ a little
    assert predictor.fingerprint != in_float32


def test_predictions_a_folder_cannot_keep_are_returned_all_the_same(tiny_model_dir, tmp_path, caplog):
    predictor, crops = Predictor.load(tiny_model_dir, bfloat16=False), synthetic_crops(8).images
    (tmp_path / "a-file").write_text("")
    kept_in = tmp_path / "a-file" / "kept"  # cannot be made: its parent is a file
    np.testing.assert_array_equal(predict_all(predictor, crops, kept_in=kept_in), predict_all(predictor, crops))
    assert "Predictions not kept in" in caplog.text
    assert [path.name for path in tmp_path.iterdir()] == ["a-file"]


def test_a_folder_without_checksums_keeps_no_predictions(tiny_model_dir, tmp_path):
    folder = export_model(tiny_model_dir / WEIGHTS_FILE, TINY_MODEL, tmp_path, version="unchecked")
    metadata = json.loads((folder / "model.json").read_text())
    del metadata["sha256"]
    (folder / "model.json").write_text(json.dumps(metadata))
    predictor = Predictor.load(folder)
    assert predictor.fingerprint is None
    predict_all(predictor, synthetic_crops(8).images, kept_in=tmp_path / "kept")
    assert not (tmp_path / "kept").exists()


def test_model_folder_records_version_labels_and_metrics(tiny_model_dir):
    metadata = json.loads((tiny_model_dir / "model.json").read_text())
    assert metadata["version"] == "tiny-1" == Predictor.load(tiny_model_dir).version
    assert metadata["labels"] == list(EXPRESSIONS)
    assert tiny_model_dir.stat().st_mode & 0o777 == 0o755  # readable by the web server's user, not just its writer
    assert 0 <= metadata["metrics"]["validation_accuracy"] <= 1


def test_export_never_overwrites_a_version(tiny_model_dir):
    with pytest.raises(FileExistsError):
        export_model(tiny_model_dir / WEIGHTS_FILE, TINY_MODEL, tiny_model_dir.parent, version="tiny-1")


@pytest.mark.parametrize(
    "damage",
    [
        "missing parameters",
        "corrupt parameters",
        "corrupt parameters, no checksums",  # a folder from before checksums: Paddle's own load fails
        "missing metadata",
        "metadata without a version",
    ],
)
def test_damaged_model_folder_fails_to_load_with_a_clear_error(tiny_model_dir, tmp_path, damage):
    broken = export_model(tiny_model_dir / WEIGHTS_FILE, TINY_MODEL, tmp_path, version="broken")
    if damage == "missing parameters":
        (broken / "inference.pdiparams").unlink()
    elif damage.startswith("corrupt parameters"):
        (broken / "inference.pdiparams").write_bytes(b"\0" * 100)
        if damage.endswith("no checksums"):
            metadata = json.loads((broken / "model.json").read_text())
            del metadata["sha256"]
            (broken / "model.json").write_text(json.dumps(metadata))
    elif damage == "missing metadata":
        (broken / "model.json").unlink()
    else:
        (broken / "model.json").write_text('["not", "an", "object"]')
    with pytest.raises(ModelLoadError, match="broken"):
        Predictor.load(broken)


def change_without_changing_size(path) -> None:
    """Zero 400 bytes in the middle of the file, as a bad disk or a botched copy might: same size, loads."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = bytes(400)
    path.write_bytes(bytes(data))


def test_model_json_records_each_files_sha256_and_a_changed_file_is_refused(tiny_model_dir, tmp_path):
    folder = export_model(tiny_model_dir / WEIGHTS_FILE, TINY_MODEL, tmp_path, version="checked")
    recorded = json.loads((folder / "model.json").read_text())["sha256"]
    assert recorded == {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("inference.json", "inference.pdiparams", "weights.pdparams")
    }
    Predictor.load(folder)

    change_without_changing_size(folder / "inference.pdiparams")
    with pytest.raises(ModelLoadError, match=r"checked: inference.pdiparams is not the file model.json records"):
        Predictor.load(folder)


def test_a_folder_from_before_checksums_still_loads(tiny_model_dir, tmp_path):
    folder = export_model(tiny_model_dir / WEIGHTS_FILE, TINY_MODEL, tmp_path, version="old")
    metadata = json.loads((folder / "model.json").read_text())
    del metadata["sha256"]
    (folder / "model.json").write_text(json.dumps(metadata))
    assert Predictor.load(folder).version == "old"


def test_fine_tuning_refuses_weights_changed_since_export(tiny_model_dir, tmp_path):
    folder = export_model(tiny_model_dir / WEIGHTS_FILE, TINY_MODEL, tmp_path / "models", version="base")
    change_without_changing_size(folder / WEIGHTS_FILE)
    config = TrainConfig(epochs=1, batch_size=32, warmup_epochs=0.1, model=TINY_MODEL, init_from=str(folder))
    with pytest.raises(ModelFolderError, match="base: weights.pdparams is not the file model.json records"):
        train(config, synthetic_crops(64), synthetic_crops(64, seed=7), tmp_path / "run")


def test_stopped_then_resumed_run_ends_where_an_unbroken_run_does(tmp_path):
    # With dropout on, so its random masks must follow the same path too.
    with_dropout = dataclasses.replace(TINY_MODEL, dropout=0.3)
    config = TrainConfig(epochs=2, batch_size=32, warmup_epochs=0.5, model=with_dropout)
    train_set, validation_set = synthetic_crops(128), synthetic_crops(32, seed=1)
    unbroken = train(config, train_set, validation_set, tmp_path / "unbroken")

    steps_taken = []

    def stop_in_second_epoch():
        steps_taken.append(1)
        return len(steps_taken) > 5  # 4 steps per epoch

    with pytest.raises(TrainingStopped):
        train(config, train_set, validation_set, tmp_path / "broken", should_stop=stop_in_second_epoch)
    resumed = train(config, train_set, validation_set, tmp_path / "broken", resume=True)

    assert [r["train_loss"] for r in resumed.history] == pytest.approx([r["train_loss"] for r in unbroken.history])
    assert json.loads((tmp_path / "broken" / "metrics.json").read_text())[-1]["epoch"] == 2
    unbroken_weights = paddle.load(str(unbroken.best_weights))
    resumed_weights = paddle.load(str(resumed.best_weights))
    for name, value in unbroken_weights.items():
        np.testing.assert_allclose(resumed_weights[name].numpy(), value.numpy(), atol=1e-5)


def test_a_run_folder_is_never_overwritten_nor_resumed_with_another_config(tmp_path):
    config = TrainConfig(epochs=1, batch_size=32, warmup_epochs=0.5, model=TINY_MODEL)
    train_set, validation_set = synthetic_crops(64), synthetic_crops(32, seed=1)
    first = train(config, train_set, validation_set, tmp_path / "run")
    best_weights = first.best_weights.read_bytes()

    with pytest.raises(FileExistsError, match="already holds a training run"):
        train(config, train_set, validation_set, tmp_path / "run")
    longer = dataclasses.replace(config, epochs=3)
    with pytest.raises(ValueError, match="different epochs"):
        train(longer, train_set, validation_set, tmp_path / "run", resume=True)

    assert first.best_weights.read_bytes() == best_weights
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["epochs"] == 1


def test_a_run_started_before_a_config_field_existed_resumes_while_the_field_holds_its_default(tmp_path):
    config = TrainConfig(epochs=2, batch_size=32, warmup_epochs=0.5, model=TINY_MODEL)
    train_set, validation_set = synthetic_crops(64), synthetic_crops(32, seed=1)
    with pytest.raises(TrainingStopped):
        train(config, train_set, validation_set, tmp_path / "run", should_stop=iter([False, False, True]).__next__)
    run_config = json.loads((tmp_path / "run" / "config.json").read_text())
    for added in ("teachers", "distill_weight", "distill_temperature"):  # as a run from before distillation
        del run_config["config"][added]
    (tmp_path / "run" / "config.json").write_text(json.dumps(run_config))

    resumed = train(config, train_set, validation_set, tmp_path / "run", resume=True)

    assert [record["epoch"] for record in resumed.history] == [1, 2]


def test_command_line_refuses_an_existing_run_with_a_message(tmp_path):
    train_dir = write_class_folders(tmp_path / "faces", synthetic_crops(64, seed=2))
    args = ["--train", f"folder:{train_dir}", "--validation", f"folder:{train_dir}", "--out", str(tmp_path / "run")]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "state.json").write_text("{}")

    with pytest.raises(SystemExit, match="ml.train: .* already holds a training run"):
        train_main([*args, "--epochs", "1"])


def test_weights_that_do_not_fit_the_net_are_an_error_not_a_warning(tiny_model_dir, tmp_path):
    other_net = dataclasses.replace(TINY_MODEL, channels=(4, 16))
    with pytest.raises(ValueError, match="does not fit this net"):
        export_model(tiny_model_dir / WEIGHTS_FILE, other_net, tmp_path, version="misfit")
    assert not (tmp_path / "misfit").exists()

    # A run's checkpoint folder has no model.json to check shapes against: the weights themselves refuse.
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / WEIGHTS_FILE).write_bytes((tiny_model_dir / WEIGHTS_FILE).read_bytes())
    config = TrainConfig(epochs=1, batch_size=32, init_from=str(checkpoint), model=other_net)
    with pytest.raises(ValueError, match="does not fit this net"):
        train(config, synthetic_crops(64), synthetic_crops(32, seed=7), tmp_path / "run")


def test_config_file_may_leave_model_and_augmentation_out_or_null():
    assert TrainConfig.from_dict({"model": None, "augment": None}) == TrainConfig()
    assert TrainConfig.from_dict({}) == TrainConfig()
    assert TrainConfig.from_dict({"model": {"dropout": 0.1}}).model == ModelConfig(dropout=0.1)


def test_fine_tuning_starts_from_the_given_model(tiny_model_dir, tmp_path):
    config = TrainConfig(epochs=1, batch_size=32, learning_rate=1e-9, warmup_epochs=0.1, model=TINY_MODEL)
    config.init_from = str(tiny_model_dir)
    result = train(config, synthetic_crops(64), synthetic_crops(64, seed=7), tmp_path)
    # With a vanishing learning rate the fine-tuned model is the starting model.
    before = Predictor.load(tiny_model_dir, bfloat16=False).predict(synthetic_crops(64, seed=7).images)
    assert result.best_validation_accuracy == pytest.approx(
        (before.argmax(1) == synthetic_crops(64, seed=7).labels).mean()
    )


def test_fine_tuning_may_change_dropout_and_working_size(tiny_model_dir, tmp_path):
    sharper = dataclasses.replace(TINY_MODEL, dropout=0.2, working_size=INPUT_SIZE)
    config = TrainConfig(epochs=1, batch_size=32, warmup_epochs=0.1, init_from=str(tiny_model_dir), model=sharper)
    train(config, synthetic_crops(64), synthetic_crops(32, seed=7), tmp_path / "run")

    model_dir = export_run(tmp_path / "run", tmp_path / "models", version="sharper")

    assert Predictor.load(model_dir).metadata["model_config"]["working_size"] == INPUT_SIZE
    assert Predictor.load(model_dir).metadata["parent"] == "tiny-1"
    net = ExpressionNet(sharper)
    load_weights(net, model_dir / WEIGHTS_FILE)
    crops = synthetic_crops(16, seed=5).images
    exact = Predictor.load(model_dir, bfloat16=False)
    np.testing.assert_allclose(exact.predict(crops), predict_probabilities(net, crops), atol=1e-4)


def test_fine_tuning_refuses_a_net_whose_weights_do_not_fit_the_parent(tiny_model_dir, tmp_path):
    wider = dataclasses.replace(TINY_MODEL, hidden=TINY_MODEL.hidden * 2)
    config = TrainConfig(epochs=1, batch_size=32, init_from=str(tiny_model_dir), model=wider)
    with pytest.raises(ValueError, match="weight shapes"):
        train(config, synthetic_crops(64), synthetic_crops(32, seed=7), tmp_path / "run")
    assert not (tmp_path / "run" / "last.pdparams").exists()


def test_class_weights_lift_rare_classes_and_keep_the_mean_loss_scale():
    labels = np.array([0] * 90 + [1] * 10)
    weights = class_weights(labels, power=0.5)
    assert weights[1] == pytest.approx(3 * weights[0])
    assert (weights[labels]).mean() == pytest.approx(1.0)


def test_learning_rate_warms_up_then_decays_to_zero():
    rates = [learning_rate_at(step, 100, 10, 0.1) for step in range(100)]
    assert rates[0] == pytest.approx(0.01) and rates[9] == pytest.approx(0.1)
    assert rates[10] == pytest.approx(0.1) and rates[-1] < 1e-3
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))


def test_augmentation_is_reproducible_and_keeps_shape_and_range():
    images = synthetic_crops(8).images
    first = augment_batch(images, np.random.default_rng(1), AugmentConfig())
    again = augment_batch(images, np.random.default_rng(1), AugmentConfig())
    assert first.shape == (8, INPUT_SIZE, INPUT_SIZE) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0
    np.testing.assert_array_equal(first, again)


def test_augmentation_switched_off_returns_the_image():
    still = AugmentConfig(0.0, (1.0, 1.0), 0.0, False, 0.0, 0.0, 0.0)
    images = synthetic_crops(4).images
    np.testing.assert_allclose(augment_batch(images, np.random.default_rng(0), still), images / 255.0, atol=1e-5)


def test_a_training_run_exports_its_best_epoch_with_its_history(tmp_path):
    config = TrainConfig(epochs=2, batch_size=32, warmup_epochs=0.5, model=TINY_MODEL)
    result = train(config, synthetic_crops(128), synthetic_crops(32, seed=1), tmp_path / "run")

    model_dir = export_run(tmp_path / "run", tmp_path / "models", version="from-run")

    metadata = Predictor.load(model_dir).metadata
    assert metadata["metrics"]["validation_accuracy"] == result.best_validation_accuracy
    assert metadata["training"]["best_epoch"] == result.best_epoch
    assert metadata["training"]["data"]["train"] == synthetic_crops(128).class_counts()
    assert metadata["model_config"]["channels"] == list(TINY_MODEL.channels)


def write_class_folders(root, crops):
    for index, (image, label) in enumerate(zip(crops.images, crops.labels, strict=True)):
        folder = root / EXPRESSIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index}.png")
    return root


def test_command_line_fine_tunes_a_model_on_class_folders(tiny_model_dir, tmp_path):
    train_dir = write_class_folders(tmp_path / "reviewed", synthetic_crops(64, seed=2))
    validation_dir = write_class_folders(tmp_path / "held-out", synthetic_crops(32, seed=3))
    config_file = tmp_path / "config.json"
    # No "model": a fine-tune keeps the net shape of the model it starts from.
    config_file.write_text(json.dumps({"batch_size": 16, "warmup_epochs": 0.5}))

    train_main(
        [
            "--train", f"folder:{train_dir}", "--validation", f"folder:{validation_dir}", "--config", str(config_file),
            "--init-from", str(tiny_model_dir), "--epochs", "1", "--out", str(tmp_path / "run"),
        ]
    )  # fmt: skip

    run = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run["config"]["init_from"] == str(tiny_model_dir)
    assert run["config"]["model"]["channels"] == list(TINY_MODEL.channels)
    assert sum(run["data"]["train"].values()) == 64 and sum(run["data"]["validation"].values()) == 32
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())[0]["epoch"] == 1


def test_command_line_needs_data_to_train_and_to_choose_on(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        train_main(["--train", "folder:somewhere", "--out", str(tmp_path)])

    # argparse's usage error (2), not the exit of a run that found its folder missing.
    assert exited.value.code == 2
    assert "give --fer2013, or both --train and --validation" in capsys.readouterr().err


def fine_tuned_weights(tiny_model_dir, tmp_path, data, **config) -> tuple[dict, dict]:
    """The tiny model's weights before and after fine-tuning on `data`, by name."""
    before = {name: value.numpy() for name, value in paddle.load(str(tiny_model_dir / WEIGHTS_FILE)).items()}
    fine_tune = TrainConfig(epochs=2, batch_size=16, learning_rate=0.05, init_from=str(tiny_model_dir), **config)
    result = train(fine_tune, data, synthetic_crops(32, seed=9), tmp_path / "run")
    after = {name: value.numpy() for name, value in paddle.load(str(result.best_weights)).items()}
    return before, after


@pytest.mark.parametrize("parent_share", [0.0, 0.3])
def test_frozen_stages_keep_their_weights_and_statistics(tiny_model_dir, tmp_path, parent_share):
    before, after = fine_tuned_weights(
        tiny_model_dir, tmp_path, synthetic_crops(64, seed=5), frozen_stages=1, parent_share=parent_share
    )

    # The tiny net: stage 1 is features.0 (convolution and batch norm), stage 2 features.2; then the head.
    first_stage = [name for name in before if name.startswith("features.0.")]
    assert any(name.endswith("_mean") for name in first_stage)  # the batch norm's running mean is among them
    for name in first_stage:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert not np.array_equal(after["features.2.0.weight"], before["features.2.0.weight"])
    assert not np.array_equal(after["head.6.weight"], before["head.6.weight"])


def test_a_class_missing_from_the_data_is_left_out_of_the_loss(tiny_model_dir, tmp_path):
    crops = synthetic_crops(96, seed=5)
    without_neutral = crops.labels != EXPRESSIONS.index("neutral")
    data = type(crops)(crops.images[without_neutral], crops.labels[without_neutral])

    before, after = fine_tuned_weights(tiny_model_dir, tmp_path, data)

    # The head's last layer: one column per expression. Neutral's column moves only by weight decay.
    change = np.abs(after["head.6.weight"] - before["head.6.weight"]).mean(axis=0)
    neutral = EXPRESSIONS.index("neutral")
    assert change[neutral] < 0.05 * np.delete(change, neutral).min()


def test_with_every_stage_frozen_the_convolutions_run_once_per_image_and_its_mirror(
    tiny_model_dir, tmp_path, monkeypatch
):
    seen = []
    pooled_features = ExpressionNet.pooled_features

    def counting(net, pixels):
        seen.append((len(pixels), net.training))
        return pooled_features(net, pixels)

    monkeypatch.setattr(ExpressionNet, "pooled_features", counting)
    data = synthetic_crops(64, seed=5)
    stages = len(TINY_MODEL.channels)

    before, after = fine_tuned_weights(tiny_model_dir, tmp_path, data, frozen_stages=stages)

    # The 64 images, then their mirror images, once, in eval mode; then each of the 2 epochs validated on 32.
    assert seen == [(64, False), (64, False), (32, False), (32, False)]
    for name in before:
        if name.startswith("features."):
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert not np.array_equal(after["head.6.weight"], before["head.6.weight"])


def test_a_fine_tune_kept_with_a_parent_share_is_that_blend_of_the_parent_and_its_own_weights(
    tiny_model_dir, tmp_path, monkeypatch
):
    parent = {name: value.numpy() for name, value in paddle.load(str(tiny_model_dir / WEIGHTS_FILE)).items()}
    fine_tune = TrainConfig(
        epochs=1, batch_size=16, learning_rate=0.05, init_from=str(tiny_model_dir), parent_share=0.25
    )
    validated = []

    def recording(net, images):  # the weights of the net each epoch is validated on
        validated.append({name: value.numpy().copy() for name, value in net.state_dict().items()})
        return predict_probabilities(net, images)

    monkeypatch.setattr("ml.train.predict_probabilities", recording)
    result = train(fine_tune, synthetic_crops(64, seed=5), synthetic_crops(32, seed=9), tmp_path / "run")

    # One epoch, so it is the best; last.pdparams holds the fine-tune's own weights, unblended.
    kept = {name: value.numpy() for name, value in paddle.load(str(result.best_weights)).items()}
    own = {name: value.numpy() for name, value in paddle.load(str(tmp_path / "run" / "last.pdparams")).items()}
    assert any(name.endswith("_mean") for name in parent)  # batch-norm statistics are blended too
    for name in parent:
        np.testing.assert_allclose(kept[name], 0.25 * parent[name] + 0.75 * own[name], rtol=1e-5, atol=1e-6)
    assert not np.allclose(own["head.6.weight"], parent["head.6.weight"])
    # The epoch was validated, and chosen, as the blend it keeps.
    assert len(validated) == 1 and all(np.array_equal(validated[0][name], kept[name]) for name in kept)


@pytest.mark.parametrize("share, init_from", [(0.5, None), (1.0, "parent"), (-0.1, "parent")])
def test_a_parent_share_needs_a_parent_and_a_share_below_one(tiny_model_dir, tmp_path, share, init_from):
    config = TrainConfig(
        epochs=1, batch_size=16, parent_share=share, init_from=str(tiny_model_dir) if init_from else None
    )
    with pytest.raises(ValueError, match="parent_share"):
        train(config, synthetic_crops(32, seed=1), synthetic_crops(16, seed=2), tmp_path / "run")


def math_library_threads() -> int:
    """The threads Paddle's MKL will run on now, as MKL itself reports them."""
    return ctypes.CDLL(str(Path(paddle.__file__).parent / "libs" / "libmklml_intel.so")).MKL_Get_Max_Threads()


@pytest.mark.skipif(math_threads() < 2, reason="the environment asks for one thread")
def test_training_runs_on_its_threads_after_a_one_thread_predictor_was_loaded(tiny_model_dir, tmp_path):
    Predictor.load(tiny_model_dir, threads=1)  # as a worker that had read a video has
    assert math_library_threads() == 1

    seen = []
    config = TrainConfig(epochs=1, batch_size=16, init_from=str(tiny_model_dir))
    train(config, synthetic_crops(32, seed=1), synthetic_crops(16, seed=2), tmp_path / "run",
          on_progress=lambda progress: seen.append(math_library_threads()))  # fmt: skip

    assert seen and set(seen) == {math_threads()}


def agreement_with(model_dir, result, crops) -> float:
    """How often the net a run kept reads these crops as the model folder's net does."""
    teacher = Predictor.load(model_dir, bfloat16=False).predict(crops.images).argmax(1)
    net = ExpressionNet(TINY_MODEL)
    load_weights(net, result.best_weights)
    return float((predict_probabilities(net, crops.images).argmax(1) == teacher).mean())


def test_a_taught_net_learns_what_its_teacher_knows_where_the_labels_say_nothing(tiny_model_dir, tmp_path):
    crops = synthetic_crops(192, seed=11)
    meaningless = type(crops)(crops.images, np.random.default_rng(3).permutation(crops.labels))
    taught = TrainConfig(
        epochs=4,
        batch_size=16,
        learning_rate=0.05,
        warmup_epochs=0.2,
        model=TINY_MODEL,
        teachers=(str(tiny_model_dir),),
        distill_weight=1.0,
    )
    untaught = dataclasses.replace(taught, teachers=(), distill_weight=0.0)
    fresh = synthetic_crops(128, seed=12)

    with_teacher = train(taught, meaningless, synthetic_crops(32, seed=13), tmp_path / "taught")
    without = train(untaught, meaningless, synthetic_crops(32, seed=13), tmp_path / "untaught")

    # Measured: 0.75 against 0.10 (chance: about 1/7).
    assert agreement_with(tiny_model_dir, with_teacher, fresh) > 0.6
    assert agreement_with(tiny_model_dir, without, fresh) < 0.4
    assert (tmp_path / "taught" / "teacher-logits.npz").is_file()  # a resumed run reads them, not the teachers


def test_teachers_say_the_same_of_an_image_and_its_mirror_image_and_are_averaged(tiny_model_dir, tmp_path):
    other = train_tiny_model(tmp_path / "models", version="tiny-2", epochs=1)
    images = synthetic_crops(16, seed=14).images
    images[:, :, :10] = 0  # no longer symmetric

    both = teacher_logits((str(tiny_model_dir), str(other)), images, tmp_path / "both.npz")
    mirrored = teacher_logits((str(tiny_model_dir), str(other)), images[..., ::-1].copy(), tmp_path / "mirrored.npz")
    first = teacher_logits((str(tiny_model_dir),), images, tmp_path / "cache.npz")
    second = teacher_logits((str(other),), images, tmp_path / "cache.npz")  # not the first's

    np.testing.assert_allclose(mirrored, both, atol=1e-4)
    np.testing.assert_allclose(both, (first + second) / 2, atol=1e-5)
    assert not np.allclose(first, second, atol=1e-2)


def test_teachers_targets_leave_out_the_classes_the_data_lacks():
    logits = np.random.default_rng(0).normal(0, 2, (5, len(EXPRESSIONS))).astype(np.float32)
    present = np.ones(len(EXPRESSIONS), bool)
    present[EXPRESSIONS.index("disgust")] = False

    targets = teacher_targets(logits, 2.0, present)

    np.testing.assert_allclose(targets.sum(axis=1), 1, atol=1e-6)
    assert (targets[:, EXPRESSIONS.index("disgust")] == 0).all()
    # A higher temperature spreads the targets: the top one falls.
    assert (teacher_targets(logits, 4.0, present).max(axis=1) < targets.max(axis=1)).all()


@pytest.mark.parametrize(
    ("teachers", "weight", "temperature"), [((), 0.5, 2.0), (("x",), 0.0, 2.0), (("x",), 1.5, 2.0), (("x",), 0.5, 0.0)]
)
def test_distillation_needs_teachers_and_a_weight_and_a_temperature_above_zero(tmp_path, teachers, weight, temperature):
    config = TrainConfig(
        epochs=1,
        batch_size=32,
        model=TINY_MODEL,
        teachers=teachers,
        distill_weight=weight,
        distill_temperature=temperature,
    )
    with pytest.raises(ValueError, match="distill"):
        train(config, synthetic_crops(64), synthetic_crops(32, seed=1), tmp_path / "run")
    assert not (tmp_path / "run" / "state.json").exists()
