"""A model version's folder: its file names, its model.json read and written whole, and whether it is complete.

The one place that knows the layout, and free of Paddle so the site can read a folder without it.
ml.export writes folders, ml.predictor serves them, ml.train fine-tunes from them, and the site
registers and retrains them. A folder holds

    model.json           version, labels, input size, net config, metrics, training summary
    inference.json       the graph for `paddle.inference` (what `ml.predictor` serves)
    inference.pdiparams  its parameters
    weights.pdparams     the eager state dict, to fine-tune from (`TrainConfig.init_from`)
"""

import json
import os
from pathlib import Path

from ml.labels import EXPRESSIONS, INPUT_SIZE

METADATA_FILE = "model.json"
WEIGHTS_FILE = "weights.pdparams"  # also what ml.train's checkpoints hold
INFERENCE_PREFIX = "inference"  # the prefix paddle.jit.save writes under
INFERENCE_GRAPH = f"{INFERENCE_PREFIX}.json"
INFERENCE_PARAMETERS = f"{INFERENCE_PREFIX}.pdiparams"
FILES = (METADATA_FILE, INFERENCE_GRAPH, INFERENCE_PARAMETERS, WEIGHTS_FILE)


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
    return metadata


def write_metadata(folder: str | Path, metadata: dict) -> None:
    """Write model.json whole: a reader sees the old file or the new one, never half of one."""
    path = Path(folder) / METADATA_FILE
    temporary = path.with_name(f".{METADATA_FILE}.tmp")
    temporary.write_text(json.dumps(metadata, indent=2))
    os.replace(temporary, path)


def missing_files(folder: str | Path) -> list[str]:
    """The files of a model folder that `folder` lacks, in FILES order; empty when it is complete."""
    return [name for name in FILES if not (Path(folder) / name).is_file()]
