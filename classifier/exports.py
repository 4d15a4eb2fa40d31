"""A user's (or, for staff, the whole site's) faces, predictions and reviews, streamed as CSV, JSON or a ZIP.

Each generator reads the faces in chunks and yields bytes as it goes, so an export of any size
holds only a chunk in memory. The ZIP holds the reviewed faces' crops (the 48x48 grey images the
model saw) as PNGs in one folder per true expression: the ImageFolder layout `ml.data` reads
(`python -m ml.train --train folder:PATH`).
"""

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator

import numpy as np
from PIL import Image

from classifier.models import Face
from classifier.training_data import face_crop
from ml.labels import EXPRESSIONS

CHUNK = 2000  # faces read from the database at a time

FIELDS = [
    "capture_id",
    "captured_at",
    "source",
    "video_id",
    "video_time",
    "image_width",
    "image_height",
    "owner",
    "face_id",
    "face_number",
    "track",
    "box_x",
    "box_y",
    "box_width",
    "box_height",
    "model_version",
    "predicted_label",
    "confidence",
    *(f"probability_{label}" for label in EXPRESSIONS),
    "true_label",
    "is_correct",
    "reviewed_by",
    "reviewed_at",
]


def face_record(face: Face) -> dict:
    """One face as a flat record: its capture (a video's frame with its video and time), box, prediction and
    review."""
    capture = face.capture
    return {
        "capture_id": capture.pk,
        "captured_at": capture.created_at.isoformat(),
        "source": capture.source,
        "video_id": capture.video_id,  # a video frame's video and its time in seconds; None for a photo
        "video_time": capture.video_time,
        "image_width": capture.width,
        "image_height": capture.height,
        "owner": capture.owner.get_username(),
        "face_id": face.pk,
        "face_number": face.number,
        "track": face.track,  # which face followed through the video it is
        "box_x": face.box_x,
        "box_y": face.box_y,
        "box_width": face.box_width,
        "box_height": face.box_height,
        "model_version": face.model_version.version,
        "predicted_label": face.predicted_label,
        "confidence": face.confidence,
        **{f"probability_{label}": face.probabilities.get(label, 0.0) for label in EXPRESSIONS},
        "true_label": face.true_label,
        "is_correct": face.is_correct,
        "reviewed_by": face.reviewed_by.get_username() if face.reviewed_by else None,
        "reviewed_at": face.reviewed_at.isoformat() if face.reviewed_at else None,
    }


def _records(faces: Iterable[Face]) -> Iterator[dict]:
    for face in faces:
        yield face_record(face)


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(record: dict) -> dict:
    """The record with text that a spreadsheet would take for a formula quoted by a leading apostrophe."""
    return {
        key: f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
        for key, value in record.items()
    }


def csv_chunks(faces: Iterable[Face]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    for count, record in enumerate(_records(faces), start=1):
        writer.writerow(_spreadsheet_safe(record))
        if count % CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def json_chunks(faces: Iterable[Face]) -> Iterator[bytes]:
    """A JSON array of the records, CHUNK records at a time."""
    parts = [b"["]
    for count, record in enumerate(_records(faces)):
        parts.append((b"," if count else b"") + b"\n" + json.dumps(record).encode())
        if len(parts) >= CHUNK:
            yield b"".join(parts)
            parts = []
    parts.append(b"\n]\n")
    yield b"".join(parts)


class _Chunks(io.RawIOBase):
    """A write-only stream that hands what was written to the generator that reads it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        taken, self.parts = b"".join(self.parts), []
        return taken


def crops_zip_chunks(faces: Iterable[Face]) -> Iterator[bytes]:
    """The reviewed faces' crops as PNGs in a folder per true expression, streamed as a ZIP.

    The stream cannot seek, so zipfile writes each member's sizes after it (data descriptors).
    """
    stream = _Chunks()
    missing = []
    with zipfile.ZipFile(stream, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for face in faces:
            if face.true_label is None:
                continue
            try:
                crop = face_crop(face)
            except Exception:  # noqa: BLE001 (no crop, and its image gone or unreadable): named, not fatal
                missing.append(face.pk)
                continue
            png = io.BytesIO()
            Image.fromarray(np.asarray(crop)).save(png, format="PNG")
            archive.writestr(f"{face.true_label}/face-{face.pk}.png", png.getvalue())
            yield stream.take()
        if missing:
            # Said in the archive itself: it is streamed, so nothing can be said once it has started.
            note = "These reviewed faces have no crop, and no readable image to cut one from:\n"
            archive.writestr("MISSING.txt", note + "".join(f"face {pk}\n" for pk in missing))
    yield stream.take()
