"""Data readers: every source becomes a `LabelledImages` of grey INPUT_SIZE crops and label indices.

Readers check what they read and name the file at fault, so a bad file stops a run
before training starts, not in the middle of an epoch.
"""

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.labels import EXPRESSIONS, INPUT_SIZE, NUM_CLASSES

FER2013_USAGES = ("Training", "PublicTest", "PrivateTest")


class DataError(ValueError):
    """A data file that cannot be read as promised; the message names the file."""


@dataclass(frozen=True)
class LabelledImages:
    images: np.ndarray  # (N, INPUT_SIZE, INPUT_SIZE) uint8 grey
    labels: np.ndarray  # (N,) int64 indices into EXPRESSIONS

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"images must be (N, {INPUT_SIZE}, {INPUT_SIZE}), got {self.images.shape}")
        if self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got {self.images.dtype}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"{len(self.labels)} labels for {len(self.images)} images")
        if len(self.labels) and not (0 <= self.labels.min() and self.labels.max() < NUM_CLASSES):
            raise ValueError("labels must be indices into EXPRESSIONS")

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=NUM_CLASSES)
        return {label: int(count) for label, count in zip(EXPRESSIONS, counts, strict=True)}

    @staticmethod
    def concatenate(parts: "list[LabelledImages]") -> "LabelledImages":
        return LabelledImages(
            images=np.concatenate([part.images for part in parts]),
            labels=np.concatenate([part.labels for part in parts]),
        )


def read_fer2013_csv(path: str | Path, usages: tuple[str, ...] = FER2013_USAGES) -> LabelledImages:
    """Read the Kaggle FER2013 CSV (`emotion,pixels,Usage`), plain or gzipped, keeping `usages` rows."""
    path = Path(path)
    unknown = set(usages) - set(FER2013_USAGES)
    if unknown:
        raise ValueError(f"unknown FER2013 usage {sorted(unknown)}; choose from {FER2013_USAGES}")
    opener = gzip.open if path.suffix == ".gz" else open
    images, labels = [], []
    try:
        with opener(path, "rt", newline="") as file:
            reader = csv.DictReader(file)
            if reader.fieldnames is None or not {"emotion", "pixels", "Usage"} <= set(reader.fieldnames):
                raise DataError(f"{path}: not a FER2013 CSV (expected the columns emotion,pixels,Usage)")
            for row in reader:
                if row["Usage"] not in usages:
                    continue
                line = reader.line_num
                pixels = np.array(row["pixels"].split(), dtype=np.int32)
                if pixels.size != INPUT_SIZE * INPUT_SIZE or pixels.min() < 0 or pixels.max() > 255:
                    raise DataError(f"{path}, line {line}: expected {INPUT_SIZE * INPUT_SIZE} pixel values 0-255")
                label = int(row["emotion"])
                if not 0 <= label < NUM_CLASSES:
                    raise DataError(f"{path}, line {line}: emotion {label} is not 0-{NUM_CLASSES - 1}")
                images.append(pixels.astype(np.uint8).reshape(INPUT_SIZE, INPUT_SIZE))
                labels.append(label)
    except (OSError, EOFError, csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from error
    return LabelledImages(
        images=np.stack(images) if images else np.empty((0, INPUT_SIZE, INPUT_SIZE), np.uint8),
        labels=np.array(labels, dtype=np.int64),
    )
