"""Time the model on one core: one face crop classified, and a 640x480 photo decoded, searched and classified.

    python bench/bench_inference.py --model models/VERSION [--runs 300]

Pins the process to one CPU core and one math thread before Paddle loads, as one
gunicorn worker per core would run. Where the CPU computes in reduced precision (ml.runtime), both
ways in one run: as the site runs there, then in 32-bit floats throughout. Targets (issue 3): a crop under 5 ms; a photo
with one face, decode + find + classify, under 25 ms p50.
"""

import argparse
import io
import os
import statistics
import sys
from pathlib import Path

os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from shared import (  # this folder is on sys.path when run as a script
    milliseconds,
    one_face_photo_jpeg,
    precisions_to_compare,
    site_precision,
)

from ml.faces import find_faces
from ml.labels import INPUT_SIZE
from ml.predictor import Predictor


def report(name: str, times: list[float], target: float) -> None:
    p50 = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1]
    print(f"{name:<44} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  (target p50 < {target} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a model folder")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    print(f"CPU cores used: {sorted(os.sched_getaffinity(0))}")
    for half_precision, bfloat16 in precisions_to_compare():
        measure(args.model, args.runs, half_precision=half_precision, bfloat16=bfloat16)


def measure(model: Path, runs: int, *, half_precision: bool, bfloat16: bool) -> None:
    predictor = Predictor.load(model, threads=1, bfloat16=bfloat16)
    crop = np.random.default_rng(0).integers(0, 256, (1, INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    photo = one_face_photo_jpeg()

    def classify_photo() -> None:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(photo)))
        finding = find_faces(image)
        assert len(finding.faces) == 1, "the benchmark photo should hold one face"
        predictor.predict(np.stack([face.crop for face in finding.faces]))

    detector = "16" if half_precision else "32"
    print(f"model {predictor.version}: classifier in {predictor.computes_in}, face detector in {detector}-bit floats")
    with site_precision(half_precision):
        report("  one crop classified", milliseconds(lambda: predictor.predict(crop), runs), 5)
        report("  640x480 JPEG: decode + find + classify", milliseconds(classify_photo, runs), 25)


if __name__ == "__main__":
    main()
