"""A real, tiny model trained in seconds on synthetic crops, for tests and smoke runs.

Its predictions are genuine Paddle outputs, just of a model that knows nothing about
faces: it learns seven synthetic patterns (noise around a grey level that is the class).
"""

import tempfile
from pathlib import Path

import numpy as np

from ml.data import LabelledImages
from ml.export import export_model
from ml.labels import INPUT_SIZE, NUM_CLASSES
from ml.model import ModelConfig
from ml.train import TrainConfig, train

TINY_MODEL = ModelConfig(channels=(4, 8), convs_per_stage=1, hidden=16, dropout=0.0)


def synthetic_crops(count: int, seed: int = 0) -> LabelledImages:
    """Noisy crops whose mean grey level (one of seven) is the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, count)
    levels = 20 + 35 * labels[:, None, None]
    images = levels + rng.integers(-15, 16, (count, INPUT_SIZE, INPUT_SIZE))
    return LabelledImages(images.clip(0, 255).astype(np.uint8), labels.astype(np.int64))


def train_tiny_model(models_dir: str | Path, *, version: str = "tiny-1", epochs: int = 3) -> Path:
    """Train, export and return the folder of a tiny model version under `models_dir`."""
    config = TrainConfig(epochs=epochs, batch_size=32, learning_rate=0.05, warmup_epochs=0.2, model=TINY_MODEL)
    validation_set = synthetic_crops(64, seed=1)
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(config, synthetic_crops(256), validation_set, run_dir)
        return export_model(
            result.best_weights,
            TINY_MODEL,
            models_dir,
            version=version,
            metrics={"validation_accuracy": result.best_validation_accuracy},
            training={"data": "synthetic grey levels", "epochs": epochs},
        )
