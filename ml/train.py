"""Train the expression CNN: `python -m ml.train --fer2013 PATH --out runs/NAME`.

The loop is plain Paddle, top to bottom: augment a batch, step SGD with a warm-up
and cosine learning rate, evaluate on the validation set after each epoch, write
metrics and a checkpoint, keep the best epoch. A run resumes from its last
checkpoint (`--resume`) and fine-tunes from an exported model (`--init-from`).
"""

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paddle
from paddle import nn

from ml.augment import AugmentConfig, augment_batch
from ml.calibration import softmax
from ml.data import LabelledImages, read_dataset
from ml.labels import NUM_CLASSES
from ml.model import ExpressionNet, ModelConfig, load_weights, predict_probabilities
from ml.model_folder import METADATA_FILE, WEIGHTS_FILE, check_files, file_sha256, read_metadata
from ml.runtime import use_math_threads


def from_json(config_class: type, values: dict):
    """A frozen config dataclass from its JSON form, where tuples were written as lists."""
    return config_class(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    # Loss weight of a class is count ** -power: 0 ignores imbalance, 1 fully balances it.
    # 0.5 lifts disgust (1.5% of FER2013) without giving up much overall accuracy.
    class_weight_power: float = 0.5
    seed: int = 0
    init_from: str | None = None  # a folder holding WEIGHTS_FILE to fine-tune from
    # The first this many convolution stages keep their weights and batch-norm statistics: a fine-tune on
    # a few hundred faces then adapts what the net makes of its features, not the features themselves.
    # With every stage frozen only the head learns, and it learns from features computed once for each
    # image and its mirror image: an epoch then costs the head's few products, not the convolutions, and
    # the mirror is the only augmentation (a warped crop's features would have to be computed anew).
    frozen_stages: int = 0
    # A fine-tune's kept net is parent_share x its parent's weights + the rest x its own, every epoch's
    # validation included: averaging in weight space (WiSE-FT, Wortsman et al. 2022) keeps most of what the
    # fine-tune learned and much of what the parent knew, where the fine-tune alone forgets it.
    parent_share: float = 0.0
    # Knowledge distillation (Hinton, Vinyals and Dean 2015): these model folders' nets teach beside the labels.
    # Their logits are read once for each training image, unaugmented, each net's averaged over the image and its
    # mirror image (so a flipped image keeps its target), then averaged over the nets: an ensemble's knowledge
    # in one net that costs one net's time to run and to retrain. The loss is (1 - distill_weight) x the labels'
    # + distill_weight x T^2 x the cross-entropy from the teachers' softmax at T = distill_temperature to the
    # net's (T^2 keeps the two parts' gradients on one scale).
    teachers: tuple[str, ...] = ()
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    # None: the parent's net when fine-tuning, else ModelConfig(). A fine-tune given a net must keep
    # the parent's weight shapes; it may change the rest (dropout, working size).
    model: ModelConfig | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        model = values.pop("model", None)
        augment = from_json(AugmentConfig, values.pop("augment", None) or {})
        teachers = tuple(values.pop("teachers", ()))
        return cls(
            **values,
            teachers=teachers,
            model=from_json(ModelConfig, model) if model is not None else None,
            augment=augment,
        )


@dataclass(frozen=True)
class Progress:
    epoch: int  # 1-based
    epochs: int
    step: int  # within the epoch, 1-based
    steps: int
    loss: float
    images_per_second: float
    seconds_left: float
    validation_accuracy: float | None  # of the last finished epoch


@dataclass(frozen=True)
class TrainResult:
    best_epoch: int
    best_validation_accuracy: float
    best_weights: Path
    history: list[dict]


class TrainingStopped(Exception):
    """Raised when `should_stop` asks the loop to end early (e.g. a cancelled job)."""


def class_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Loss weight per class, count ** -power, scaled so the average weight of a training image is 1."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    weights = np.maximum(counts, 1) ** -power
    return (weights / (weights * counts).sum() * counts.sum()).astype(np.float32)


def learning_rate_at(step: int, total_steps: int, warmup_steps: int, peak: float) -> float:
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def save_atomically(obj: object, path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    paddle.save(obj, str(temporary))
    os.replace(temporary, path)


def write_json(data: object, path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)


def optimizer_state(net: nn.Layer, optimizer: paddle.optimizer.Optimizer, *, load: dict | None = None) -> dict | None:
    """Save (or, given `load`, restore) optimizer state keyed by parameter paths like `features.0.0.weight`.

    Paddle keys it by global parameter names (`conv2d_4.w_0_velocity_0`), which depend on how
    many layers the process built before; paths make a checkpoint resumable in any process.
    """
    names = {parameter.name: path for path, parameter in net.named_parameters()}

    def rename(key: str, mapping: dict[str, str]) -> str:
        owner, _, accumulator = key.partition("_velocity")
        return mapping[owner] + "_velocity" + accumulator if accumulator and owner in mapping else key

    if load is None:
        return {rename(key, names): value for key, value in optimizer.state_dict().items()}
    paths = {path: name for name, path in names.items()}
    optimizer.set_state_dict({rename(key, paths): value for key, value in load.items()})
    return None


def parent_metadata(init_from: str | None) -> dict | None:
    """The model.json of the exported model folder a fine-tune starts from; None for a run's checkpoint folder."""
    if not init_from or not (Path(init_from) / METADATA_FILE).is_file():
        return None
    return read_metadata(init_from)


def blend_with_parent(state: dict, parent_state: dict[str, np.ndarray], parent_share: float) -> dict:
    """The weights (batch-norm statistics included) of `parent_share` x the parent's + the rest x `state`'s.

    Written as the parent's plus a share of the change, so a weight the fine-tune left (a frozen stage's)
    stays exactly the parent's: 0.3 * x + 0.7 * x is not always x in float32."""
    if not parent_share:
        return state
    return {
        name: paddle.to_tensor(parent_state[name] + (1 - parent_share) * (value.numpy() - parent_state[name]))
        for name, value in state.items()
    }


def weight_shapes(model: ModelConfig) -> tuple:
    """The fields that fix the shapes of a net's weights."""
    return model.channels, model.convs_per_stage, model.hidden


def resolve_model_config(config: TrainConfig, parent: dict | None) -> ModelConfig:
    """The net to train: the config's, checked against the parent's model.json, or the parent's, or the default."""
    parent_model = from_json(ModelConfig, parent["model_config"]) if parent else None
    if config.model is None:
        return parent_model or ModelConfig()
    if parent_model is not None and weight_shapes(config.model) != weight_shapes(parent_model):
        raise ValueError(
            f"a fine-tune keeps its parent's weight shapes (channels, convs_per_stage, hidden): "
            f"{config.init_from} has {weight_shapes(parent_model)}, the config asks for {weight_shapes(config.model)}"
        )
    return config.model


def train(
    config: TrainConfig,
    train_set: LabelledImages,
    validation_set: LabelledImages,
    out_dir: str | Path,
    *,
    resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train into `out_dir` (checkpoint, metrics.json, best weights); return the best epoch's result."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    use_math_threads()  # a Predictor loaded or run in this process may have left it at one thread
    if len(train_set) < config.batch_size:
        raise ValueError(f"{len(train_set)} training images is fewer than one batch of {config.batch_size}")

    if not 0 <= config.parent_share < 1 or (config.parent_share and not config.init_from):
        raise ValueError(f"parent_share {config.parent_share} needs a parent (init_from) and 0 <= parent_share < 1")
    if not 0 <= config.distill_weight <= 1 or (config.distill_weight > 0) != bool(config.teachers):
        raise ValueError(
            f"distill_weight {config.distill_weight} needs teachers, and teachers a distill_weight in (0, 1]"
        )
    if config.distill_temperature <= 0:
        raise ValueError(f"distill_temperature {config.distill_temperature} is not above 0")
    parent = parent_metadata(config.init_from)
    config = dataclasses.replace(config, model=resolve_model_config(config, parent))
    paddle.seed(config.seed)
    net = ExpressionNet(config.model)
    if config.init_from:
        if parent is not None:  # an exported model folder, whose model.json records its weights' checksum
            check_files(config.init_from, parent, [WEIGHTS_FILE])
        load_weights(net, Path(config.init_from) / WEIGHTS_FILE)
    parent_state = {name: value.numpy() for name, value in net.state_dict().items()} if config.parent_share else {}
    kept = ExpressionNet(config.model) if config.parent_share else net  # the net that is validated and kept
    frozen = net.stages(config.frozen_stages)
    for parameter in frozen.parameters():
        parameter.stop_gradient = True
    head_only = config.frozen_stages >= len(config.model.channels)
    if head_only:
        training_features = mirrored_features(net, train_set.images)
        training_labels = np.concatenate([train_set.labels, train_set.labels])
    steps_per_epoch = (2 * len(train_set) if head_only else len(train_set)) // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = max(1, int(config.warmup_epochs * steps_per_epoch))
    optimizer = paddle.optimizer.Momentum(
        learning_rate=config.learning_rate,
        momentum=config.momentum,
        use_nesterov=True,
        parameters=[parameter for parameter in net.parameters() if not parameter.stop_gradient],
        weight_decay=config.weight_decay,
    )
    loss_fn = nn.CrossEntropyLoss(weight=paddle.to_tensor(class_weights(train_set.labels, config.class_weight_power)))
    # A class the training data lacks is left out of the softmax: nothing then pushes its logit down, so a
    # fine-tune keeps reading it as its parent did instead of learning that it never occurs.
    present = np.bincount(train_set.labels, minlength=NUM_CLASSES) > 0
    absent_classes_out = paddle.to_tensor(np.where(present, 0.0, -1e4).astype(np.float32))

    state = {"epoch": 0, "best_epoch": 0, "best_validation_accuracy": -1.0, "history": []}
    stored_config = json.loads(json.dumps(dataclasses.asdict(config)))  # as config.json holds it
    if (out_dir / "state.json").exists():
        if not resume:
            raise FileExistsError(f"{out_dir} already holds a training run: resume it or choose another folder")
        started_with = json.loads((out_dir / "config.json").read_text())["config"]
        # A field added since the run started counts as unchanged when it holds its default.
        defaults = json.loads(json.dumps(dataclasses.asdict(TrainConfig())))  # in config.json's form
        changed = sorted(key for key in stored_config if started_with.get(key, defaults.get(key)) != stored_config[key])
        if changed:
            # A resumed run must follow the schedule and data path it started on.
            raise ValueError(f"{out_dir} was started with a different {', '.join(changed)}; resume it unchanged")
        state = json.loads((out_dir / "state.json").read_text())
        load_weights(net, out_dir / "last.pdparams")
        optimizer_state(net, optimizer, load=paddle.load(str(out_dir / "last.pdopt")))
        print(f"resuming after epoch {state['epoch']}", flush=True)
    write_json(
        {
            "config": stored_config,
            "parent_version": parent["version"] if parent else None,
            "git_commit": git_commit(),
            "data": {"train": train_set.class_counts(), "validation": validation_set.class_counts()},
        },
        out_dir / "config.json",
    )

    if config.teachers:
        # The teachers' targets leave out the same classes, so they never ask for one the net cannot give.
        teachers_say = teacher_targets(
            teacher_logits(config.teachers, train_set.images, out_dir / TEACHER_LOGITS_FILE),
            config.distill_temperature,
            present,
        )
        if head_only:
            teachers_say = np.concatenate([teachers_say, teachers_say])  # the images, then their mirror images

    last_accuracy = state["history"][-1]["validation_accuracy"] if state["history"] else None
    run_start, images_done_in_run = time.monotonic(), 0
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        # One generator per epoch, which also seeds dropout, keeps a resumed run on the same random path.
        rng = np.random.default_rng([config.seed, epoch])
        paddle.seed(int(rng.integers(2**31)))
        order = rng.permutation(len(training_labels) if head_only else len(train_set))
        net.train()
        frozen.eval()  # its batch norms keep the parent's statistics
        epoch_start, loss_sum, correct = time.monotonic(), 0.0, 0
        for step in range(steps_per_epoch):
            if should_stop and should_stop():
                raise TrainingStopped(f"stopped in epoch {epoch}")
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            optimizer.set_lr(
                learning_rate_at((epoch - 1) * steps_per_epoch + step, total_steps, warmup_steps, config.learning_rate)
            )
            if head_only:
                labels = paddle.to_tensor(training_labels[index])
                logits = net.head(paddle.to_tensor(training_features[index]))
            else:
                labels = paddle.to_tensor(train_set.labels[index])
                logits = net(paddle.to_tensor(augment_batch(train_set.images[index], rng, config.augment)[:, None]))
            loss = loss_fn(logits + absent_classes_out, labels)
            if config.teachers:
                loss = (1 - config.distill_weight) * loss + config.distill_weight * distillation_loss(
                    logits + absent_classes_out, teachers_say[index], config.distill_temperature
                )
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()

            loss_sum += float(loss)
            correct += int((logits.argmax(axis=1) == labels).astype("int64").sum())
            images_done_in_run += len(index)
            rate = images_done_in_run / (time.monotonic() - run_start)
            steps_left = (config.epochs - epoch) * steps_per_epoch + steps_per_epoch - step - 1
            progress = Progress(
                epoch,
                config.epochs,
                step + 1,
                steps_per_epoch,
                loss_sum / (step + 1),
                rate,
                steps_left * config.batch_size / rate,
                last_accuracy,
            )
            if on_progress:
                on_progress(progress)
            if (step + 1) % 50 == 0 or step + 1 == steps_per_epoch:
                print(
                    f"epoch {epoch}/{config.epochs} step {step + 1}/{steps_per_epoch} "
                    f"loss {progress.loss:.4f} {rate:.0f} img/s, {progress.seconds_left / 60:.1f} min left",
                    flush=True,
                )

        kept_state = blend_with_parent(net.state_dict(), parent_state, config.parent_share)
        if kept is not net:
            kept.set_state_dict(kept_state)
        probabilities = predict_probabilities(kept, validation_set.images)
        validation_accuracy = (
            float((probabilities.argmax(axis=1) == validation_set.labels).mean()) if len(validation_set) else 0.0
        )
        record = {
            "epoch": epoch,
            "learning_rate": optimizer.get_lr(),
            "train_loss": loss_sum / steps_per_epoch,
            "train_accuracy": correct / (steps_per_epoch * config.batch_size),
            "validation_accuracy": validation_accuracy,
            "seconds": time.monotonic() - epoch_start,
            "images_per_second": steps_per_epoch * config.batch_size / (time.monotonic() - epoch_start),
        }
        print(json.dumps(record), flush=True)
        last_accuracy = validation_accuracy
        state["epoch"] = epoch
        state["history"].append(record)
        save_atomically(net.state_dict(), out_dir / "last.pdparams")
        save_atomically(optimizer_state(net, optimizer), out_dir / "last.pdopt")
        if validation_accuracy > state["best_validation_accuracy"]:
            state["best_epoch"], state["best_validation_accuracy"] = epoch, validation_accuracy
            (out_dir / "best").mkdir(exist_ok=True)
            save_atomically(kept_state, out_dir / "best" / WEIGHTS_FILE)
        write_json(state["history"], out_dir / "metrics.json")
        write_json(state, out_dir / "state.json")  # last: marks the epoch's checkpoint complete

    return TrainResult(
        best_epoch=state["best_epoch"],
        best_validation_accuracy=state["best_validation_accuracy"],
        best_weights=out_dir / "best" / WEIGHTS_FILE,
        history=state["history"],
    )


TEACHER_LOGITS_FILE = "teacher-logits.npz"  # in the run folder: a resumed run reads its teachers once


def teacher_logits(folders: tuple[str, ...], images: np.ndarray, cache: Path) -> np.ndarray:
    """The (N, 7) logits of these model folders' nets for uint8 (N, H, W) crops: each net's averaged over
    each image and its mirror image, then the nets' averaged. Kept in `cache` with the teachers' weights'
    SHA-256, and read from it when it holds these teachers' logits of as many images."""
    teachers = []
    for folder in folders:
        metadata = read_metadata(folder)
        check_files(folder, metadata, [WEIGHTS_FILE])
        teachers.append((folder, metadata))
    identity = json.dumps([file_sha256(Path(folder) / WEIGHTS_FILE) for folder in folders])
    if cache.is_file():
        with np.load(cache) as kept:
            if str(kept["teachers"]) == identity and kept["logits"].shape == (len(images), NUM_CLASSES):
                return kept["logits"]
    total = np.zeros((len(images), NUM_CLASSES), np.float32)
    for folder, metadata in teachers:
        net = ExpressionNet(from_json(ModelConfig, metadata["model_config"]))
        load_weights(net, Path(folder) / WEIGHTS_FILE)
        plain, mirrored = mirrored_outputs(net, net, images).reshape(2, len(images), NUM_CLASSES)
        total += (plain + mirrored) / 2
    logits = total / len(folders)
    temporary = cache.with_name(f".{cache.name}.tmp")
    with temporary.open("wb") as file:
        np.savez(file, logits=logits, teachers=identity)
    os.replace(temporary, cache)
    return logits


def teacher_targets(logits: np.ndarray, temperature: float, present: np.ndarray) -> np.ndarray:
    """The teachers' probabilities at `temperature`, over the classes `present` in the training data only."""
    return softmax(np.where(present, logits, -np.inf), temperature)


def distillation_loss(logits: paddle.Tensor, targets: np.ndarray, temperature: float) -> paddle.Tensor:
    """T^2 x the mean cross-entropy from the targets to the net's softmax at temperature T."""
    log_probabilities = nn.functional.log_softmax(logits / temperature, axis=1)
    return -(paddle.to_tensor(targets) * log_probabilities).sum(axis=1).mean() * temperature**2


def mirrored_features(net: ExpressionNet, images: np.ndarray) -> np.ndarray:
    """The pooled features (2N, C, 1, 1) of uint8 (N, H, W) crops, then of their mirror images, in eval mode."""
    return mirrored_outputs(net, net.pooled_features, images)


def mirrored_outputs(
    net: ExpressionNet, compute: Callable[[paddle.Tensor], paddle.Tensor], images: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """`compute` of uint8 (N, H, W) crops' pixels, then of their mirror images' (2N, ...), with `net` in eval mode."""
    was_training = net.training
    net.eval()
    outputs = []
    with paddle.no_grad():
        for mirrored in (False, True):
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size].astype(np.float32)[:, None] / 255.0
                if mirrored:
                    batch = np.ascontiguousarray(batch[..., ::-1])
                outputs.append(compute(paddle.to_tensor(batch)).numpy())
    if was_training:
        net.train()
    return np.concatenate(outputs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ml.train",
        description=__doc__.splitlines()[0],
        epilog="Data sets are ml.data specs: fer2013:PATH[:USAGE,...], folder:PATH, jaffe:PATH, ckplus:PATH.",
    )
    parser.add_argument(
        "--fer2013", help="FER2013 CSV (plain or .gz): trains on Training and chooses on PublicTest, unless given below"
    )
    parser.add_argument("--train", action="append", default=[], metavar="SPEC", help="training data (repeatable)")
    parser.add_argument("--validation", action="append", default=[], metavar="SPEC", help="data that chooses the epoch")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, metrics.json, best/")
    parser.add_argument("--config", help="JSON file of TrainConfig fields")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--init-from", help="model folder to fine-tune from")
    parser.add_argument(
        "--teacher", action="append", default=[], metavar="FOLDER", help="a model folder that teaches (repeatable)"
    )
    parser.add_argument("--distill-weight", type=float, help="the teachers' share of the loss, with --teacher")
    parser.add_argument("--limit", type=int, help="use only the first N training images (quick trials)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    args = parser.parse_args(argv)
    if args.fer2013:
        args.train = args.train or [f"fer2013:{args.fer2013}:Training"]
        args.validation = args.validation or [f"fer2013:{args.fer2013}:PublicTest"]
    if not args.train or not args.validation:
        parser.error("give --fer2013, or both --train and --validation")
    return args


def read_all(specs: list[str]) -> LabelledImages:
    parts = []
    for spec in specs:
        data, report = read_dataset(spec)
        print(report.summary(), flush=True)
        parts.append(data)
    return LabelledImages.concatenate(parts)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = TrainConfig.from_dict(json.loads(Path(args.config).read_text())) if args.config else TrainConfig()
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "init_from": args.init_from,
        "teachers": tuple(args.teacher) or None,
        "distill_weight": args.distill_weight,
    }
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    try:
        train_set, validation_set = read_all(args.train), read_all(args.validation)
        if args.limit:
            train_set = LabelledImages(train_set.images[: args.limit], train_set.labels[: args.limit])
        print(
            f"training on {len(train_set)} images {train_set.class_counts()}, validating on {len(validation_set)}",
            flush=True,
        )
        result = train(config, train_set, validation_set, args.out, resume=args.resume)
    except (FileExistsError, ValueError) as error:  # bad data (DataError) or a bad request: a message, no traceback
        sys.exit(f"ml.train: {error}")
    print(f"best epoch {result.best_epoch}: validation accuracy {result.best_validation_accuracy:.4f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
