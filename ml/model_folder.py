"""A model version's folder: its file names, its model.json read and written whole, and whether it is complete.

The one place that knows the layout, and free of Paddle so the site can read a folder without it.
ml.export writes folders, ml.predictor serves them, ml.train fine-tunes from them, and the site
registers and retrains them. A folder holds

    model.json           version, labels, input size, net config, metrics, training summary, and the
                         SHA-256 of each file below ("sha256"), checked when the file is loaded
    inference.json       the graph for `paddle.inference` (what `ml.predictor` serves)
    inference.pdiparams  its parameters
    weights.pdparams     the eager state dict, to fine-tune from (`TrainConfig.init_from`)
"""

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ml.labels import EXPRESSIONS, INPUT_SIZE

METADATA_FILE = "model.json"
WEIGHTS_FILE = "weights.pdparams"  # also what ml.train's checkpoints hold
INFERENCE_PREFIX = "inference"  # the prefix paddle.jit.save writes under
INFERENCE_GRAPH = f"{INFERENCE_PREFIX}.json"
INFERENCE_PARAMETERS = f"{INFERENCE_PREFIX}.pdiparams"
FILES = (METADATA_FILE, INFERENCE_GRAPH, INFERENCE_PARAMETERS, WEIGHTS_FILE)
CHECKSUMS = "sha256"  # model.json's {file name: SHA-256 in hex} of the other FILES


@dataclass(frozen=True)
class InferenceSettings:
    """How a folder's net is read (model.json's "inference"; absent: one plain pass)."""

    mirror: bool = False  # average each crop's logits with its mirror image's
    temperature: float = 1.0  # divide the logits by it before the softmax


class ModelFolderError(ValueError):
    """A folder that is not a usable model folder; the message names the folder and says why."""


def read_metadata(folder: str | Path) -> dict:
    """The folder's model.json, checked: a version name, and this code's labels and input size."""
    folder = Path(folder)
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ModelFolderError(f"{folder}: cannot read {METADATA_FILE} ({error})") from error
    if not isinstance(metadata, dict) or not isinstance(metadata.get("version"), str):
        raise ModelFolderError(f"{folder}: {METADATA_FILE} names no version")
    if metadata.get("labels") != list(EXPRESSIONS) or metadata.get("input_size") != INPUT_SIZE:
        raise ModelFolderError(f"{folder}: labels or input size differ from this code's {list(EXPRESSIONS)}")
    try:
        inference_settings(metadata)
    except ValueError as error:
        raise ModelFolderError(f"{folder}: {METADATA_FILE} {error}") from error
    return metadata


def inference_settings(metadata: dict) -> InferenceSettings:
    """The "inference" part of a model.json, checked; ValueError when it is not one."""
    values = metadata.get("inference", {})
    if not isinstance(values, dict) or set(values) - {"mirror", "temperature"}:
        raise ValueError('has an "inference" that is not {"mirror": true or false, "temperature": a number > 0}')
    settings = InferenceSettings(**values)
    temperature = settings.temperature
    if (
        not isinstance(settings.mirror, bool)
        or isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
    ):
        raise ValueError('has an "inference" whose mirror is not true or false, or whose temperature is not a number')
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"has an inference temperature of {temperature}, not a number > 0")
    return settings


def write_metadata(folder: str | Path, metadata: dict) -> None:
    """Write model.json whole (a reader sees the old file or the new one, never half of one), with the SHA-256
    of each of the folder's other FILES as they are now: write it after them."""
    folder = Path(folder)
    checksums = {name: file_sha256(folder / name) for name in FILES[1:] if (folder / name).is_file()}
    metadata = metadata | {CHECKSUMS: checksums} if checksums else metadata
    path = folder / METADATA_FILE
    temporary = path.with_name(f".{METADATA_FILE}.tmp")
    temporary.write_text(json.dumps(metadata, indent=2))
    os.replace(temporary, path)


def file_sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def check_files(folder: str | Path, metadata: dict, names: list[str]) -> None:
    """ModelFolderError if one of these files is not the one model.json records: changed since it was written
    (a bad disk, a botched copy), even with its size unchanged. A folder written before checksums were
    recorded has none, and passes."""
    recorded = metadata.get(CHECKSUMS, {})
    for name in names:
        if name in recorded and file_sha256(Path(folder) / name) != recorded[name]:
            raise ModelFolderError(
                f"{folder}: {name} is not the file {METADATA_FILE} records (its SHA-256 differs): it is corrupt "
                "or was replaced"
            )


def missing_files(folder: str | Path) -> list[str]:
    """The files of a model folder that `folder` lacks, in FILES order; empty when it is complete."""
    return [name for name in FILES if not (Path(folder) / name).is_file()]


@contextmanager
def staged_folder(out_dir: str | Path, version: str) -> Iterator[Path]:
    """A hidden folder to write version `version` into; on leaving the block it becomes `out_dir/version`
    whole, or, on an error, disappears. A half-written version is thus never registered nor loaded."""
    target = Path(out_dir) / version
    if target.exists():
        raise FileExistsError(f"model version {version!r} already exists at {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it private to its creator; a model folder is not secret
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
