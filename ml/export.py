"""Export trained weights as a model folder (`ml.model_folder`): Paddle inference files plus metadata.

The folder appears under its final name only once complete, so a half-written version is never loaded.
"""

import argparse
import dataclasses
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import paddle

from ml.labels import EXPRESSIONS, INPUT_SIZE
from ml.model import ExpressionNet, ModelConfig, load_weights
from ml.model_folder import INFERENCE_PREFIX, WEIGHTS_FILE, staged_folder, write_metadata
from ml.train import TrainConfig, parent_metadata


def export_model(
    weights: str | Path,
    model_config: ModelConfig,
    out_dir: str | Path,
    *,
    version: str,
    metrics: dict | None = None,
    training: dict | None = None,
    parent: str | None = None,
    inference: dict | None = None,
) -> Path:
    """Write the model folder `out_dir/version` from a state dict file; return its path.

    `inference` is how the net is to be read (ml.model_folder.InferenceSettings), absent for one plain pass.
    """
    net = ExpressionNet(model_config)
    load_weights(net, weights)
    net.eval()
    with staged_folder(out_dir, version) as staging:
        shutil.copyfile(weights, staging / WEIGHTS_FILE)
        input_spec = [paddle.static.InputSpec([None, 1, INPUT_SIZE, INPUT_SIZE], "float32", name="pixels")]
        paddle.jit.save(
            paddle.jit.to_static(net, input_spec=input_spec, full_graph=True), str(staging / INFERENCE_PREFIX)
        )
        metadata = {
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "labels": list(EXPRESSIONS),
            "input_size": INPUT_SIZE,
            "model_config": dataclasses.asdict(model_config),
            "parent": parent,  # the version it was fine-tuned from
            "metrics": metrics or {},
            "training": training or {},
        }
        if inference:
            metadata["inference"] = inference
        write_metadata(staging, metadata)
    return Path(out_dir) / version


def export_run(run_dir: str | Path, out_dir: str | Path, *, version: str) -> Path:
    """Export the best epoch of an `ml.train` run folder, with its config and history as the training summary."""
    run_dir = Path(run_dir)
    run = json.loads((run_dir / "config.json").read_text())
    state = json.loads((run_dir / "state.json").read_text())
    history = state["history"]
    best = next(record for record in history if record["epoch"] == state["best_epoch"])
    training = {
        "config": run["config"],
        "data": run.get("data"),
        "git_commit": run.get("git_commit"),
        "epochs_trained": state["epoch"],
        "best_epoch": state["best_epoch"],
        "training_seconds": round(sum(record["seconds"] for record in history)),
        "images_per_second": round(sum(r["images_per_second"] for r in history) / len(history), 1),
    }
    # A fine-tune is read as its parent is (mirrored, at its temperature): the same net, a little changed.
    parent = parent_metadata(run["config"].get("init_from"))
    return export_model(
        run_dir / "best" / WEIGHTS_FILE,
        TrainConfig.from_dict(run["config"]).model,
        out_dir,
        version=version,
        metrics={"validation_accuracy": best["validation_accuracy"]},
        training=training,
        parent=run.get("parent_version"),
        inference=parent.get("inference") if parent else None,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ml.export", description="Export a training run's best epoch.")
    parser.add_argument("--run", required=True, help="an ml.train run folder")
    parser.add_argument("--out", required=True, help="models folder; the version is written as a subfolder")
    parser.add_argument("--version", required=True, help="the new model version's name, e.g. fer2013-vgg40-v1")
    args = parser.parse_args(argv)
    print(export_run(args.run, args.out, version=args.version))


if __name__ == "__main__":
    main()
