"""Data readers: every source becomes a `LabelledImages` of grey INPUT_SIZE crops and label indices.

Readers check what they read and name the file at fault, so a bad file stops a run
before training starts, not in the middle of an epoch. Image readers also return a
`ReadReport` of the files they skipped on purpose. `read_dataset("KIND:PATH")` picks
the reader for a command line.
"""

import csv
import gzip
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ml.faces import crop_whole_image, find_faces
from ml.labels import EXPRESSIONS, INDEX_OF, INPUT_SIZE, NUM_CLASSES

FER2013_USAGES = ("Training", "PublicTest", "PrivateTest")


class DataError(ValueError):
    """A data file that cannot be read as promised; the message names the file."""


@dataclass(frozen=True)
class LabelledImages:
    images: np.ndarray  # (N, INPUT_SIZE, INPUT_SIZE) uint8 grey
    labels: np.ndarray  # (N,) int64 indices into EXPRESSIONS

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"images must be (N, {INPUT_SIZE}, {INPUT_SIZE}), got {self.images.shape}")
        if self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got {self.images.dtype}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"{len(self.labels)} labels for {len(self.images)} images")
        if len(self.labels) and not (0 <= self.labels.min() and self.labels.max() < NUM_CLASSES):
            raise ValueError("labels must be indices into EXPRESSIONS")

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=NUM_CLASSES)
        return {label: int(count) for label, count in zip(EXPRESSIONS, counts, strict=True)}

    @staticmethod
    def concatenate(parts: "list[LabelledImages]") -> "LabelledImages":
        return LabelledImages(
            images=np.concatenate([part.images for part in parts]),
            labels=np.concatenate([part.labels for part in parts]),
        )


def read_fer2013_csv(path: str | Path, usages: tuple[str, ...] = FER2013_USAGES) -> LabelledImages:
    """Read the Kaggle FER2013 CSV (`emotion,pixels,Usage`), plain or gzipped, keeping `usages` rows."""
    images, labels, _ = _read_fer2013_rows(path, usages)
    return _labelled_images(images, labels)


def read_fer2013_by_usage(path: str | Path, usages: tuple[str, ...] = FER2013_USAGES) -> dict[str, LabelledImages]:
    """Each of `usages` apart, in one pass over the file (e.g. Training to train on, PublicTest to check)."""
    images, labels, row_usages = _read_fer2013_rows(path, usages)
    by_usage = {}
    for usage in usages:
        rows = [index for index, row_usage in enumerate(row_usages) if row_usage == usage]
        if not rows:
            raise DataError(f"{path}: no rows with Usage {usage}")
        by_usage[usage] = _labelled_images([images[index] for index in rows], [labels[index] for index in rows])
    return by_usage


def _read_fer2013_rows(path: str | Path, usages: tuple[str, ...]) -> tuple[list[np.ndarray], list[int], list[str]]:
    path = Path(path)
    unknown = set(usages) - set(FER2013_USAGES)
    if unknown:
        raise ValueError(f"unknown FER2013 usage {sorted(unknown)}; choose from {FER2013_USAGES}")
    opener = gzip.open if path.suffix == ".gz" else open
    images, labels, row_usages = [], [], []
    try:
        with opener(path, "rt", newline="") as file:
            reader = csv.DictReader(file)
            if reader.fieldnames is None or not {"emotion", "pixels", "Usage"} <= set(reader.fieldnames):
                raise DataError(f"{path}: not a FER2013 CSV (expected the columns emotion,pixels,Usage)")
            for row in reader:
                if None in row.values():
                    raise DataError(f"{path}, line {reader.line_num}: expected the 3 fields emotion,pixels,Usage")
                if row["Usage"] not in usages:
                    continue
                image, label = _parse_fer2013_row(row, f"{path}, line {reader.line_num}")
                images.append(image)
                labels.append(label)
                row_usages.append(row["Usage"])
    except (OSError, EOFError, csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from error
    if not images:
        raise DataError(f"{path}: no rows with Usage {' or '.join(usages)}")
    return images, labels, row_usages


def _parse_fer2013_row(row: dict[str, str], where: str) -> tuple[np.ndarray, int]:
    pixels = _pixel_values(row["pixels"])
    if pixels is None or pixels.size != INPUT_SIZE * INPUT_SIZE or pixels.max() > 255:
        raise DataError(f"{where}: expected {INPUT_SIZE * INPUT_SIZE} pixel values 0-255")
    if not row["emotion"].strip().isdigit() or not 0 <= int(row["emotion"]) < NUM_CLASSES:
        raise DataError(f"{where}: emotion {row['emotion']!r} is not 0-{NUM_CLASSES - 1}")
    return pixels.astype(np.uint8).reshape(INPUT_SIZE, INPUT_SIZE), int(row["emotion"])


def _pixel_values(text: str) -> np.ndarray | None:
    """The whole numbers of a row's pixel string, or None when it holds anything else."""
    # No pixel value has a sign, and NumPy's parser misreads a lone one: "7 + 7" reads as two values, "7 +"
    # as 7 and 0, so a row one token off could still count right.
    if "+" in text or "-" in text:
        return None
    try:
        # NumPy's own text parser: 5x faster than splitting into strings, which made reading the reference
        # data a tenth of a retraining job.
        return np.fromstring(text, dtype=np.int64, sep=" ")
    except ValueError:  # a value that is no whole number
        return None


def _labelled_images(images: list[np.ndarray], labels: list[int]) -> LabelledImages:
    return LabelledImages(
        images=np.stack(images) if images else np.empty((0, INPUT_SIZE, INPUT_SIZE), np.uint8),
        labels=np.array(labels, dtype=np.int64),
    )


# Image datasets. What is not ours to read (contempt, hidden and non-image files, photos with
# no face) is skipped and listed in a ReadReport. A file that claims to be data but cannot be
# used (corrupt, truncated, an unknown label code) stops the read with one DataError naming
# every such file, so a broken download is fixed in one pass rather than one file per run.

FaceCropper = Callable[[Image.Image], np.ndarray | None]
"""Turns a dataset image into a model-ready (INPUT_SIZE, INPUT_SIZE) uint8 crop, or None if it has no face."""

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})

# Class folder names (lower-cased) used by FER2013's image release, CK+, AffectNet and others.
# None marks an expression the model does not have: its images are skipped and counted.
FOLDER_LABELS: dict[str, str | None] = {
    **{label: label for label in EXPRESSIONS},
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "contempt": None,
}

# JAFFE file names are SUBJECT.CODEn.NUMBER.tiff, e.g. KA.AN1.39.tiff.
JAFFE_NAME = re.compile(r"^[A-Z]{2}\.(?P<code>[A-Z]{2})\d+\.\d+\.tiff?$", re.IGNORECASE)
JAFFE_CODES = {
    "AN": "angry",
    "DI": "disgust",
    "FE": "fear",
    "HA": "happy",
    "NE": "neutral",
    "SA": "sad",
    "SU": "surprise",
}
# The Taiwanese posed set's file names: PP performer, T type, V view, e expression, NN serial.
TAIWANESE_NAME = re.compile(r"^\d{2}\d\d(?P<code>[a-g])\d{2}\.jpg$", re.IGNORECASE)
TAIWANESE_CODES = {"a": "neutral", "b": "happy", "c": "sad", "d": "angry", "e": "disgust", "f": "fear", "g": "surprise"}

SKIPPED_HIDDEN = "hidden file"
SKIPPED_NOT_AN_IMAGE = "not an image file"
SKIPPED_NO_FACE = "no face found"
SKIPPED_OUTSIDE_CLASS_FOLDERS = "not in a class folder"
# How many bad files a DataError lists before it only counts the rest.
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class ReadReport:
    """What a reader kept and what it passed over, and why, for a command line to print."""

    source: str
    kept: int
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> the paths skipped for it

    def summary(self) -> str:
        lines = [f"{self.source}: {self.kept} images"]
        for reason, paths in self.skipped.items():
            lines.append(f"  skipped {len(paths)}: {reason} (e.g. {paths[0]})")
        return "\n".join(lines)


def crop_largest_face(image: Image.Image) -> np.ndarray | None:
    """The crop of the largest face `ml.faces.find_faces` finds (the image whole if it is a crop), or None."""
    faces = find_faces(image).faces
    if not faces:
        return None
    # Datasets show one person; a second, smaller box is a false find (one shows on the astronaut's suit).
    return max(faces, key=lambda face: face.box[2] * face.box[3]).crop


# `--faces` choices of the command lines: take each image as a face crop, or find the face in it.
FACE_CROPPERS: dict[str, FaceCropper] = {"crops": crop_whole_image, "find": crop_largest_face}


def read_image_folder(root: str | Path, crop_face: FaceCropper = crop_whole_image) -> tuple[LabelledImages, ReadReport]:
    """Read the ImageFolder layout, `root/<expression>/**/<image>`, of face crops by default.

    Folder names are matched case-insensitively against FOLDER_LABELS; contempt is skipped.
    """
    root = Path(root)
    report = _ReportBuilder(f"folder:{root}")
    data = _read_class_folders(root, crop_face, report)
    return data, report.build()


def read_ck_plus(root: str | Path, crop_face: FaceCropper = crop_largest_face) -> tuple[LabelledImages, ReadReport]:
    """Read CK+ as released in class folders (anger, contempt, disgust, fear, happy, sadness, surprise).

    Releases hold either 640x490 photos or 48x48 crops; the face finder cuts the face out
    of a photo and takes a crop whole. Contempt is skipped.
    """
    root = Path(root)
    report = _ReportBuilder(f"ckplus:{root}")
    data = _read_class_folders(root, crop_face, report)
    return data, report.build()


def read_jaffe(root: str | Path, crop_face: FaceCropper = crop_largest_face) -> tuple[LabelledImages, ReadReport]:
    """Read JAFFE: a flat folder of 256x256 photos named SUBJECT.CODEn.NUMBER.tiff, the code giving the label."""
    root = Path(root)
    report = _ReportBuilder(f"jaffe:{root}")
    labelled_files, problems = [], []
    for path in _files_in(root, report, recursive=False):
        match = JAFFE_NAME.match(path.name)
        if match is None:
            problems.append(f"{path}: not named like JAFFE's SUBJECT.CODEn.NUMBER.tiff (e.g. KA.AN1.39.tiff)")
        elif match["code"].upper() not in JAFFE_CODES:
            problems.append(f"{path}: unknown expression code {match['code']!r}; JAFFE's are {' '.join(JAFFE_CODES)}")
        else:
            labelled_files.append((path, INDEX_OF[JAFFE_CODES[match["code"].upper()]]))
    data = _read_labelled_files(root, labelled_files, crop_face, report, problems)
    return data, report.build()


def read_taiwanese(root: str | Path, crop_face: FaceCropper = crop_largest_face) -> tuple[LabelledImages, ReadReport]:
    """Read the Taiwanese posed set: its folder, or its faces_256x256/ folder of photos named PPTVeNN.jpg,
    performer PP and expression letter e (a neutral ... g surprise). Evaluation only: see its README."""
    root = Path(root)
    photos = root / "faces_256x256" if (root / "faces_256x256").is_dir() else root
    report = _ReportBuilder(f"taiwanese:{root}")
    labelled_files, problems = [], []
    for path in _files_in(photos, report, recursive=False):
        match = TAIWANESE_NAME.match(path.name)
        if match is None:
            problems.append(f"{path}: not named like the Taiwanese set's PPTVeNN.jpg (e.g. 0111b01.jpg)")
        else:
            labelled_files.append((path, INDEX_OF[TAIWANESE_CODES[match["code"].lower()]]))
    data = _read_labelled_files(photos, labelled_files, crop_face, report, problems)
    return data, report.build()


def labelled_images_from_pairs(pairs: Iterable[tuple[Image.Image | np.ndarray, str]]) -> LabelledImages:
    """Face crops and their label names (e.g. the site's reviewed faces) as LabelledImages.

    An image is a Pillow image of any mode and size, or a uint8 array, grey (H, W) or
    RGB (H, W, 3); a crop that is not INPUT_SIZE square is resized as `crop_whole_image` does.
    """
    images, labels = [], []
    for position, (image, label) in enumerate(pairs):
        if label not in INDEX_OF:
            raise DataError(f"pair {position}: unknown label {label!r}; expected one of {', '.join(EXPRESSIONS)}")
        if isinstance(image, np.ndarray):
            image = _array_as_image(image, f"pair {position}")
        images.append(crop_whole_image(image))
        labels.append(INDEX_OF[label])
    return _labelled_images(images, labels)


def read_dataset(spec: str, faces: str | None = None) -> tuple[LabelledImages, ReadReport]:
    """Read the dataset a command line names as KIND:PATH, one of

        fer2013:PATH[:USAGE,...]   the FER2013 CSV, plain or .gz; all three usages unless given
        folder:PATH                ImageFolder class folders of face crops
        jaffe:PATH                 JAFFE's flat folder of photos
        ckplus:PATH                CK+ class folders
        taiwanese:PATH             the Taiwanese posed set's photos (evaluation only)

    `faces` ("crops" or "find", see FACE_CROPPERS) overrides how an image reader gets a face
    crop from each file; None keeps the reader's own way. FER2013 rows are crops already.
    """
    kind, _, location = spec.partition(":")
    if not location:
        raise DataError(
            f"dataset {spec!r}: expected KIND:PATH with KIND one of fer2013, folder, jaffe, ckplus, taiwanese"
        )
    if faces is not None and faces not in FACE_CROPPERS:
        raise ValueError(f"faces must be one of {', '.join(FACE_CROPPERS)}, got {faces!r}")
    if kind == "fer2013":
        path, usages = _split_fer2013_location(location)
        data = read_fer2013_csv(path, usages)
        return data, ReadReport(source=spec, kept=len(data))
    readers = {"folder": read_image_folder, "jaffe": read_jaffe, "ckplus": read_ck_plus, "taiwanese": read_taiwanese}
    if kind not in readers:
        raise DataError(
            f"dataset {spec!r}: unknown dataset kind {kind!r}; expected fer2013, folder, jaffe, ckplus or taiwanese"
        )
    if faces is None:
        return readers[kind](location)
    return readers[kind](location, crop_face=FACE_CROPPERS[faces])


def _split_fer2013_location(location: str) -> tuple[str, tuple[str, ...]]:
    """PATH or PATH:USAGE,...; a path that exists is taken whole, colons and all."""
    path, _, usages = location.rpartition(":")
    if not path or Path(location).exists():
        return location, FER2013_USAGES
    return path, tuple(usage.strip() for usage in usages.split(","))


class _ReportBuilder:
    def __init__(self, source: str):
        self.source = source
        self.kept = 0
        self.skipped: dict[str, list[str]] = {}

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.setdefault(reason, []).append(str(path))

    def build(self) -> ReadReport:
        return ReadReport(source=self.source, kept=self.kept, skipped=self.skipped)


def _files_in(folder: Path, report: _ReportBuilder, *, recursive: bool) -> list[Path]:
    """The image files in `folder`, sorted; hidden and non-image files go to the report."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    paths = sorted(folder.rglob("*") if recursive else folder.iterdir())
    images = []
    for path in paths:
        if any(part.startswith(".") or part == "__MACOSX" for part in path.relative_to(folder).parts):
            # macOS leaves ._NAME metadata files with an image's suffix beside it in archives.
            if path.is_file():
                report.skip(path, SKIPPED_HIDDEN)
        elif path.is_file():
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(path)
            else:
                report.skip(path, SKIPPED_NOT_AN_IMAGE)
    return images


def _read_class_folders(root: Path, crop_face: FaceCropper, report: _ReportBuilder) -> LabelledImages:
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    labelled_files = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name == "__MACOSX":
            if entry.is_file():
                report.skip(entry, SKIPPED_HIDDEN)
            continue
        if entry.is_file():
            image_file = entry.suffix.lower() in IMAGE_SUFFIXES
            report.skip(entry, SKIPPED_OUTSIDE_CLASS_FOLDERS if image_file else SKIPPED_NOT_AN_IMAGE)
            continue
        if entry.name.lower() not in FOLDER_LABELS:
            raise DataError(
                f"{root}: folder {entry.name!r} is not an expression; class folders are named "
                f"{', '.join(FOLDER_LABELS)} (pass the folder that holds them)"
            )
        label = FOLDER_LABELS[entry.name.lower()]
        files = _files_in(entry, report, recursive=True)
        if label is None:
            for path in files:
                report.skip(path, f"{entry.name.lower()} is not one of the {NUM_CLASSES} expressions")
            continue
        labelled_files.extend((path, INDEX_OF[label]) for path in files)
    return _read_labelled_files(root, labelled_files, crop_face, report, problems=[])


def _read_labelled_files(
    root: Path,
    labelled_files: list[tuple[Path, int]],
    crop_face: FaceCropper,
    report: _ReportBuilder,
    problems: list[str],
) -> LabelledImages:
    images, labels = [], []
    for path, label in labelled_files:
        try:
            image = _open_image(path)
        except DataError as error:
            problems.append(str(error))
            continue
        crop = crop_face(image)
        if crop is None:
            report.skip(path, SKIPPED_NO_FACE)
            continue
        images.append(crop)
        labels.append(label)
    if problems:
        listed = "\n  ".join(problems[:MAX_LISTED_PROBLEMS])
        more = f"\n  ... and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
        raise DataError(f"{root}: {len(problems)} file(s) cannot be used:\n  {listed}{more}")
    if not images:
        raise DataError(f"{root}: no usable images found" + (f" ({_skip_counts(report)})" if report.skipped else ""))
    report.kept = len(images)
    return _labelled_images(images, labels)


def _skip_counts(report: _ReportBuilder) -> str:
    return ", ".join(f"skipped {len(paths)}: {reason}" for reason, paths in report.skipped.items())


def _open_image(path: Path) -> Image.Image:
    """The decoded image, turned upright by its EXIF orientation; a DataError if it cannot be decoded."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not when it is first used
            return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{path}: cannot read as an image ({error})") from error


def _array_as_image(array: np.ndarray, where: str) -> Image.Image:
    if array.dtype != np.uint8:
        raise DataError(f"{where}: an image array must be uint8, got {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise DataError(f"{where}: an image array must have shape (H, W) or (H, W, 3), got {array.shape}")
    return Image.fromarray(array)
