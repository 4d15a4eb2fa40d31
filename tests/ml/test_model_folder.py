"""ml.model_folder: the one reader and writer of a model folder's layout, free of Paddle."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml.labels import EXPRESSIONS, INPUT_SIZE
from ml.model_folder import FILES, ModelFolderError, check_files, missing_files, read_metadata, write_metadata

SHIPPED_MODELS = Path(__file__).resolve().parents[2] / "models"
GOOD = {"version": "v1", "labels": list(EXPRESSIONS), "input_size": INPUT_SIZE}


def test_metadata_written_is_read_back(tmp_path: Path) -> None:
    write_metadata(tmp_path, GOOD | {"metrics": {"accuracy": 0.7}})

    assert read_metadata(tmp_path) == GOOD | {"metrics": {"accuracy": 0.7}}
    assert [path.name for path in tmp_path.iterdir()] == ["model.json"]  # no temporary file left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read model.json"),
        ("{not json", "cannot read model.json"),
        (json.dumps(["v1"]), "names no version"),
        (json.dumps(GOOD | {"version": 4}), "names no version"),
        (json.dumps(GOOD | {"labels": ["happy", "sad"]}), "labels or input size differ"),
        (json.dumps(GOOD | {"input_size": 64}), "labels or input size differ"),
    ],
)
def test_unusable_metadata_is_refused_naming_the_folder(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "model.json").write_text(content)

    with pytest.raises(ModelFolderError, match=message) as refused:
        read_metadata(tmp_path)
    assert str(tmp_path) in str(refused.value)


def test_missing_files_lists_what_a_folder_lacks(tmp_path: Path) -> None:
    assert missing_files(tmp_path) == list(FILES)
    for name in FILES:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "inference.json").unlink()

    assert missing_files(tmp_path) == ["inference.json"]


def test_reading_a_folder_does_not_import_paddle() -> None:
    code = "import sys, ml.model_folder; sys.exit('paddle' in sys.modules)"

    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2]).returncode == 0


@pytest.mark.parametrize("folder", sorted(SHIPPED_MODELS.glob("*/model.json")), ids=lambda path: path.parent.name)
def test_every_shipped_model_folder_records_its_files_checksums(folder: Path) -> None:
    folder = folder.parent
    metadata = read_metadata(folder)
    assert sorted(metadata["sha256"]) == sorted(name for name in FILES if name != "model.json")
    check_files(folder, metadata, [name for name in FILES if name != "model.json"])  # raises if one differs
