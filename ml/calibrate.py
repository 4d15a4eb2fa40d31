"""Make a calibrated model version: `python -m ml.calibrate --model DIR --data SPEC --out DIR --version NAME`.

The new folder holds the same net as --model, read with its mirror image too when --mirror is
given, and a temperature fitted on --data (FER2013 PublicTest: never trained on, never the
report's PrivateTest) so that its confidence matches its accuracy (`ml.calibration`). It appears
under its final name only once complete, with the fit's figures in model.json's "calibration".
"""

import argparse
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from ml.calibration import expected_calibration_error, fit_temperature, softmax
from ml.data import read_dataset
from ml.evaluate import in_batches
from ml.model_folder import FILES, METADATA_FILE, ModelFolderError, read_metadata, staged_folder, write_metadata
from ml.predictor import ModelLoadError, Predictor


def calibrate_model(model_dir: str | Path, data_spec: str, out_dir: str | Path, *, version: str, mirror: bool) -> Path:
    """Write `out_dir/version`: the net of `model_dir` with a fitted temperature (and mirroring); its path."""
    model_dir = Path(model_dir)
    parent = read_metadata(model_dir)
    with staged_folder(out_dir, version) as staging:
        data, _ = read_dataset(data_spec)
        for name in FILES:
            if name != METADATA_FILE:
                shutil.copyfile(model_dir / name, staging / name)
        # The parent's net and how it was trained; not what was measured or decided of the parent itself.
        inherited = {key: value for key, value in parent.items() if key not in ("metrics", "decision", "promoted")}
        metadata = inherited | {
            "version": version,
            "parent": parent["version"],
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "inference": {"mirror": mirror, "temperature": 1.0},
        }
        write_metadata(staging, metadata)
        predictor = Predictor.load(staging)
        logits = in_batches(predictor.logits, data.images)
        temperature = fit_temperature(logits, data.labels)
        metadata["inference"]["temperature"] = temperature
        metadata["calibration"] = {
            "data": data_spec,
            "count": len(data),
            "computed_in": predictor.computes_in,
            "temperature": temperature,
            "accuracy": float((logits.argmax(axis=1) == data.labels).mean()),
            "expected_calibration_error_before": expected_calibration_error(softmax(logits), data.labels),
            "expected_calibration_error_after": expected_calibration_error(softmax(logits, temperature), data.labels),
        }
        write_metadata(staging, metadata)
    return Path(out_dir) / version


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ml.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the model folder to calibrate")
    parser.add_argument("--data", required=True, help="data to fit the temperature on, e.g. fer2013:PATH:PublicTest")
    parser.add_argument("--out", required=True, help="models folder; the new version is written as a subfolder")
    parser.add_argument("--version", required=True, help="the new version's name")
    parser.add_argument("--mirror", action="store_true", help="also read each crop's mirror image")
    args = parser.parse_args(argv)
    try:
        folder = calibrate_model(args.model, args.data, args.out, version=args.version, mirror=args.mirror)
    except (FileExistsError, ValueError, ModelFolderError, ModelLoadError) as error:
        sys.exit(f"ml.calibrate: {error}")
    calibration = read_metadata(folder)["calibration"]
    print(
        f"{folder}: temperature {calibration['temperature']}, accuracy {calibration['accuracy']:.4f}, expected "
        f"calibration error {calibration['expected_calibration_error_before']:.4f} -> "
        f"{calibration['expected_calibration_error_after']:.4f} on {calibration['count']} images of {args.data}"
    )


if __name__ == "__main__":
    main()
