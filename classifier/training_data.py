"""What a retraining job learns from and is tested on: every reviewed face's crop and true expression,
split by photo or video. Reads only; the worker (classifier.retraining) and the benchmarks use it."""

import zlib
from dataclasses import dataclass

import numpy as np
from django.core.files.storage import default_storage
from PIL import Image

from classifier.models import Face
from ml.data import LabelledImages
from ml.faces import crop_whole_image
from ml.labels import INDEX_OF, INPUT_SIZE

# Reviewed faces are split by what they were seen in, so the faces of one photo stay together, and so do
# the frames of one video (a fifth of a second apart, nearly the same picture: trained on some and tested
# on others, a candidate would be tested on what it learned). A stable hash of the capture's id, or of a
# frame's video's id, puts 2 in 10 in the held-out set (never trained on, the promotion's test), 1 in 10
# in the validation set (chooses the best epoch), the rest in the training set.
SPLIT_BUCKETS = 10
HELD_OUT_BUCKETS = {0, 1}
VALIDATION_BUCKETS = {2}


def split_of(capture_id: int, *, video_id: int | None = None) -> str:
    """ "held_out", "validation" or "train": fixed for a photo's capture, or for every frame of a video,
    whatever else is in the database."""
    source = f"capture:{capture_id}" if video_id is None else f"video:{video_id}"
    bucket = zlib.crc32(source.encode()) % SPLIT_BUCKETS
    if bucket in HELD_OUT_BUCKETS:
        return "held_out"
    if bucket in VALIDATION_BUCKETS:
        return "validation"
    return "train"


@dataclass(frozen=True)
class ReviewedFaces:
    train: LabelledImages
    validation: LabelledImages
    held_out: LabelledImages


def reviewed_faces() -> ReviewedFaces:
    """Every reviewed face's crop and true expression, split by `split_of` its capture or video."""
    splits = {"train": ([], []), "validation": ([], []), "held_out": ([], [])}
    faces = Face.objects.filter(reviewed_at__isnull=False).select_related("capture").order_by("id")
    for face in faces.iterator(chunk_size=500):
        crops, labels = splits[split_of(face.capture_id, video_id=face.capture.video_id)]
        crops.append(face_crop(face))
        labels.append(INDEX_OF[face.true_label])
    return ReviewedFaces(
        **{
            name: LabelledImages(
                np.stack(crops) if crops else np.empty((0, INPUT_SIZE, INPUT_SIZE), np.uint8),
                np.array(labels, np.int64),
            )
            for name, (crops, labels) in splits.items()
        }
    )


def face_crop(face: Face) -> np.ndarray:
    """The crop the model saw; for a face stored before crops were kept, its box cut from the image, unaligned."""
    if face.crop is not None:
        return np.frombuffer(bytes(face.crop), np.uint8).reshape(INPUT_SIZE, INPUT_SIZE)
    with default_storage.open(face.capture.image.name) as file:
        image = Image.open(file)
        image.load()
    x, y, width, height = face.box
    return crop_whole_image(image.crop((x, y, x + width, y + height)))
