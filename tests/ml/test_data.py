"""ml.data's readers through their public functions, on small dataset files made in each test."""

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.data import (
    DataError,
    labelled_images_from_pairs,
    read_ck_plus,
    read_dataset,
    read_fer2013_by_usage,
    read_fer2013_csv,
    read_image_folder,
    read_jaffe,
)
from ml.faces import crop_whole_image
from ml.labels import EXPRESSIONS, INDEX_OF, INPUT_SIZE

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# The part of tests/fixtures/astronaut.jpg around the face: scaled to 256 px it frames
# the face as JAFFE's photos do (about a third of the width, background around it).
ASTRONAUT_HEAD = (42, 0, 242, 200)


def flat_crop(value: int) -> np.ndarray:
    return np.full((INPUT_SIZE, INPUT_SIZE), value, np.uint8)


def write_fer_csv(path: Path, rows: list[tuple[object, object, object]]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["emotion", "pixels", "Usage"])
        writer.writerows(rows)
    return path


def fer_row(label: int, value: int, usage: str) -> tuple[int, str, str]:
    return label, " ".join([str(value)] * INPUT_SIZE * INPUT_SIZE), usage


def save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def astronaut_head(size: int) -> Image.Image:
    with Image.open(FIXTURES / "astronaut.jpg") as image:
        return image.convert("L").crop(ASTRONAUT_HEAD).resize((size, size), Image.Resampling.LANCZOS)


# FER2013 CSV


@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013.csv.gz"])
def test_fer2013_csv_keeps_the_chosen_usages(tmp_path: Path, name: str) -> None:
    path = write_fer_csv(
        tmp_path / name,
        [fer_row(3, 10, "Training"), fer_row(6, 20, "PublicTest"), fer_row(0, 30, "Training")],
    )

    data = read_fer2013_csv(path, ("Training",))

    assert data.labels.tolist() == [3, 0]
    assert data.images.shape == (2, INPUT_SIZE, INPUT_SIZE)
    assert (data.images[0] == 10).all() and (data.images[1] == 30).all()


def test_fer2013_by_usage_reads_each_usage_apart_in_one_pass(tmp_path: Path) -> None:
    path = write_fer_csv(
        tmp_path / "fer2013.csv",
        [fer_row(3, 10, "Training"), fer_row(6, 20, "PublicTest"), fer_row(0, 30, "Training")],
    )

    by_usage = read_fer2013_by_usage(path, ("Training", "PublicTest"))

    assert list(by_usage) == ["Training", "PublicTest"]
    assert by_usage["Training"].labels.tolist() == [3, 0] and (by_usage["Training"].images[1] == 30).all()
    assert by_usage["PublicTest"].labels.tolist() == [6]
    with pytest.raises(DataError, match="no rows with Usage PrivateTest"):
        read_fer2013_by_usage(path, ("Training", "PrivateTest"))


@pytest.mark.parametrize(
    "bad_row",
    [
        (3, "1 2 3", "Training"),  # too few pixels
        (3, " ".join(["7"] * (INPUT_SIZE * INPUT_SIZE - 1) + ["x"]), "Training"),  # not a number
        (3, " ".join(["7"] * (INPUT_SIZE * INPUT_SIZE - 1) + ["3.5"]), "Training"),  # not an integer
        (3, " ".join(["7"] * (INPUT_SIZE * INPUT_SIZE - 1) + [str(2**32 + 5)]), "Training"),  # 5 in 32 bits
        # NumPy's parser skips a lone sign: a row one token too long would read as the right count.
        (3, " ".join(["7", "+", *["7"] * (INPUT_SIZE * INPUT_SIZE - 1)]), "Training"),
        (3, " ".join(["7"] * (INPUT_SIZE * INPUT_SIZE - 1) + ["-5"]), "Training"),  # below 0
        (3, " ".join(["7"] * (INPUT_SIZE * INPUT_SIZE - 1) + ["256"]), "Training"),  # above 255
        (9, " ".join(["7"] * INPUT_SIZE * INPUT_SIZE), "Training"),  # no such emotion
        ("happy", " ".join(["7"] * INPUT_SIZE * INPUT_SIZE), "Training"),  # emotion not an index
    ],
    ids=[
        "short",
        "not-a-number",
        "decimal",
        "beyond-32-bits",
        "lone-sign",
        "negative",
        "above-255",
        "emotion-9",
        "emotion-word",
    ],
)
@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013.csv.gz"])
def test_fer2013_bad_row_is_a_data_error_naming_file_and_line(tmp_path: Path, name: str, bad_row: tuple) -> None:
    path = write_fer_csv(tmp_path / name, [fer_row(3, 10, "Training"), bad_row])

    with pytest.raises(DataError, match=rf"{name}, line 3"):
        read_fer2013_csv(path)


def test_fer2013_row_missing_its_pixels_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n3\n")

    with pytest.raises(DataError, match=r"fer2013.csv, line 2"):
        read_fer2013_csv(path)


def test_fer2013_without_rows_of_the_chosen_usage_is_a_data_error(tmp_path: Path) -> None:
    path = write_fer_csv(tmp_path / "fer2013.csv", [fer_row(3, 10, "Training")])

    with pytest.raises(DataError, match=r"fer2013.csv: no rows with Usage PrivateTest"):
        read_fer2013_csv(path, ("PrivateTest",))


def test_truncated_gzip_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    whole = write_fer_csv(tmp_path / "whole.csv.gz", [fer_row(3, 10, "Training")] * 50).read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(DataError, match="cut.csv.gz"):
        read_fer2013_csv(path)


# ImageFolder


def test_image_folder_reads_synonym_folders_any_mode_and_size(tmp_path: Path) -> None:
    save(Image.fromarray(flat_crop(40)), tmp_path / "angry" / "a.png")
    save(Image.new("RGB", (120, 90), (200, 200, 200)), tmp_path / "Sadness" / "b.jpg")
    save(Image.new("RGBA", (64, 64), (0, 0, 0, 255)), tmp_path / "happiness" / "c.png")
    save(Image.new("I;16", (50, 50), 1000), tmp_path / "surprised" / "nested" / "d.png")
    save(Image.new("F", (48, 48), 0.5), tmp_path / "neutral" / "e.tiff")  # float grey levels run 0-1

    data, report = read_image_folder(tmp_path)

    by_label = {EXPRESSIONS[label]: image for image, label in zip(data.images, data.labels, strict=True)}
    assert sorted(by_label) == ["angry", "happy", "neutral", "sad", "surprise"]
    assert data.images.shape == (5, INPUT_SIZE, INPUT_SIZE)
    assert (by_label["angry"] == 40).all()
    assert abs(int(by_label["sad"].mean()) - 200) <= 2
    assert (by_label["happy"] == 0).all()
    assert abs(int(by_label["neutral"].mean()) - 128) <= 1
    assert report.kept == 5
    assert report.skipped == {}


def test_image_folder_skips_contempt_and_stray_files_and_reports_them(tmp_path: Path) -> None:
    save(Image.fromarray(flat_crop(40)), tmp_path / "happy" / "a.png")
    save(Image.fromarray(flat_crop(50)), tmp_path / "contempt" / "b.png")
    save(Image.fromarray(flat_crop(60)), tmp_path / "happy" / "._a.png")  # macOS metadata beside a.png
    (tmp_path / "happy" / "notes.txt").write_text("not an image")
    (tmp_path / "README").write_text("a dataset")

    data, report = read_image_folder(tmp_path)

    assert data.labels.tolist() == [INDEX_OF["happy"]]
    assert report.kept == 1
    skipped = {reason: sorted(Path(path).name for path in paths) for reason, paths in report.skipped.items()}
    assert skipped == {
        "contempt is not one of the 7 expressions": ["b.png"],
        "hidden file": ["._a.png"],
        "not an image file": ["README", "notes.txt"],
    }
    assert "contempt" in report.summary()


def test_image_folder_with_corrupt_files_names_every_one(tmp_path: Path) -> None:
    save(Image.fromarray(flat_crop(40)), tmp_path / "happy" / "good.png")
    whole = save(Image.new("RGB", (64, 64), (9, 9, 9)), tmp_path / "sad" / "truncated.png").read_bytes()
    (tmp_path / "sad" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "fear").mkdir()
    (tmp_path / "fear" / "text.jpg").write_text("this is not a JPEG")

    with pytest.raises(DataError) as raised:
        read_image_folder(tmp_path)

    message = str(raised.value)
    assert "truncated.png" in message and "text.jpg" in message
    assert "good.png" not in message


def test_image_folder_with_unknown_class_folder_is_a_data_error(tmp_path: Path) -> None:
    save(Image.fromarray(flat_crop(40)), tmp_path / "train" / "happy" / "a.png")

    with pytest.raises(DataError, match="'train'"):
        read_image_folder(tmp_path)


@pytest.mark.parametrize("make", [lambda path: path.mkdir(), lambda path: None], ids=["empty", "missing"])
def test_image_folder_without_images_is_a_data_error(tmp_path: Path, make) -> None:
    make(tmp_path / "faces")

    with pytest.raises(DataError, match="faces"):
        read_image_folder(tmp_path / "faces")


# JAFFE


def test_jaffe_label_comes_from_the_code_in_the_file_name(tmp_path: Path) -> None:
    codes = {
        "AN": "angry",
        "DI": "disgust",
        "FE": "fear",
        "HA": "happy",
        "SA": "sad",
        "SU": "surprise",
        "NE": "neutral",
    }
    for number, code in enumerate(codes):
        save(Image.fromarray(flat_crop(number * 30)), tmp_path / f"KA.{code}{number + 1}.{number + 30}.tiff")

    data, report = read_jaffe(tmp_path, crop_face=crop_whole_image)

    labels = {int(image[0, 0]) // 30: EXPRESSIONS[label] for image, label in zip(data.images, data.labels, strict=True)}
    assert labels == dict(enumerate(codes.values()))
    assert report.kept == 7


def test_jaffe_crops_the_face_and_skips_photos_without_one(tmp_path: Path) -> None:
    face = save(astronaut_head(256), tmp_path / "KA.HA1.29.tiff")
    save(Image.new("L", (256, 256), 128), tmp_path / "KA.AN1.39.tiff")
    (tmp_path / "README").write_text("JAFFE")

    data, report = read_jaffe(tmp_path)

    assert data.labels.tolist() == [INDEX_OF["happy"]]
    with Image.open(face) as photo:
        whole = crop_whole_image(photo)
    assert not np.array_equal(data.images[0], whole)  # cut around the face, not the photo shrunk
    assert {reason: [Path(path).name for path in paths] for reason, paths in report.skipped.items()} == {
        "no face found": ["KA.AN1.39.tiff"],
        "not an image file": ["README"],
    }


@pytest.mark.parametrize("name", ["KA.XX1.39.tiff", "photo.tiff"])
def test_jaffe_file_without_a_known_code_is_a_data_error(tmp_path: Path, name: str) -> None:
    save(Image.fromarray(flat_crop(10)), tmp_path / "KA.AN1.39.tiff")
    save(Image.fromarray(flat_crop(10)), tmp_path / name)

    with pytest.raises(DataError, match=name):
        read_jaffe(tmp_path, crop_face=crop_whole_image)


# CK+


def test_ck_plus_reads_crops_and_photos_and_skips_contempt(tmp_path: Path) -> None:
    save(Image.fromarray(flat_crop(70)), tmp_path / "anger" / "S010_004_00000017.png")
    save(Image.fromarray(flat_crop(80)), tmp_path / "sadness" / "S011_002_00000022.png")
    save(Image.fromarray(flat_crop(90)), tmp_path / "contempt" / "S138_008_00000007.png")
    photo = Image.new("L", (640, 490), 128)
    photo.paste(astronaut_head(300), (170, 95))
    save(photo, tmp_path / "happy" / "S014_005_00000017.png")

    data, report = read_ck_plus(tmp_path)

    labels = [EXPRESSIONS[label] for label in data.labels]
    assert sorted(labels) == ["angry", "happy", "sad"]
    assert (data.images[labels.index("angry")] == 70).all()  # a 48x48 crop is used as it is
    assert report.kept == 3
    assert list(report.skipped) == ["contempt is not one of the 7 expressions"]
    assert len(report.skipped["contempt is not one of the 7 expressions"]) == 1


# The site's reviewed faces


def test_pairs_become_labelled_crops() -> None:
    crop = np.arange(INPUT_SIZE * INPUT_SIZE, dtype=np.uint8).reshape(INPUT_SIZE, INPUT_SIZE)
    pairs = [
        (crop, "fear"),
        (Image.new("RGB", (96, 96), (255, 255, 255)), "neutral"),
        (np.zeros((60, 60, 3), np.uint8), "disgust"),
    ]

    data = labelled_images_from_pairs(pairs)

    assert data.labels.tolist() == [INDEX_OF["fear"], INDEX_OF["neutral"], INDEX_OF["disgust"]]
    assert np.array_equal(data.images[0], crop)
    assert (data.images[1] == 255).all() and (data.images[2] == 0).all()


def test_no_pairs_is_an_empty_set() -> None:
    data = labelled_images_from_pairs([])

    assert len(data) == 0 and data.images.shape == (0, INPUT_SIZE, INPUT_SIZE)


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ((np.zeros((48, 48), np.uint8), "happiness"), "unknown label 'happiness'"),
        ((np.zeros((48, 48), np.float32), "happy"), "uint8"),
        ((np.zeros((2, 48, 48), np.uint8), "happy"), "shape"),
    ],
    ids=["synonym-label", "float-array", "stack-of-crops"],
)
def test_bad_pair_is_a_data_error_naming_its_position(pair: tuple, message: str) -> None:
    with pytest.raises(DataError, match=rf"pair 1: .*{message}"):
        labelled_images_from_pairs([(flat_crop(0), "sad"), pair])


# One spec string per source


def test_dataset_spec_chooses_the_reader(tmp_path: Path) -> None:
    fer = write_fer_csv(tmp_path / "fer.csv.gz", [fer_row(3, 10, "Training"), fer_row(6, 20, "PrivateTest")])
    save(Image.fromarray(flat_crop(40)), tmp_path / "folder" / "neutral" / "a.png")
    save(Image.fromarray(flat_crop(50)), tmp_path / "jaffe" / "KA.SU1.16.tiff")
    save(Image.fromarray(flat_crop(60)), tmp_path / "ckplus" / "fear" / "a.png")

    assert read_dataset(f"fer2013:{fer}")[0].labels.tolist() == [3, 6]
    assert read_dataset(f"fer2013:{fer}:PrivateTest")[0].labels.tolist() == [6]
    assert read_dataset(f"fer2013:{fer}:Training,PrivateTest")[0].labels.tolist() == [3, 6]
    assert read_dataset(f"folder:{tmp_path / 'folder'}")[0].labels.tolist() == [INDEX_OF["neutral"]]
    # A 48 px JAFFE file is small enough for the face finder to take whole.
    assert read_dataset(f"jaffe:{tmp_path / 'jaffe'}")[0].labels.tolist() == [INDEX_OF["surprise"]]
    data, report = read_dataset(f"ckplus:{tmp_path / 'ckplus'}", faces="crops")
    assert data.labels.tolist() == [INDEX_OF["fear"]]
    assert report.source == f"ckplus:{tmp_path / 'ckplus'}"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("affectnet:/data", "unknown dataset kind 'affectnet'"),
        ("/data/fer2013.csv", "KIND:PATH"),
        ("fer2013:", "KIND:PATH"),
    ],
)
def test_bad_dataset_spec_says_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_dataset(spec)


def test_unknown_fer2013_usage_in_a_spec_is_an_error(tmp_path: Path) -> None:
    fer = write_fer_csv(tmp_path / "fer.csv", [fer_row(3, 10, "Training")])

    with pytest.raises(ValueError, match="Validation"):
        read_dataset(f"fer2013:{fer}:Validation")


def test_taiwanese_label_comes_from_the_letter_in_the_file_name(tmp_path: Path) -> None:
    photos = tmp_path / "faces_256x256"
    photos.mkdir()
    for number, letter in enumerate("abcdefg"):
        save(Image.fromarray(flat_crop(number * 30)), photos / f"0{number + 1}11{letter}01.jpg")

    data, _ = read_dataset(f"taiwanese:{tmp_path}", faces="crops")

    expected = ["neutral", "happy", "sad", "angry", "disgust", "fear", "surprise"]
    assert data.labels.tolist() == [INDEX_OF[label] for label in expected]
    save(Image.fromarray(flat_crop(0)), photos / "0111h01.jpg")  # no such expression letter
    with pytest.raises(DataError, match="0111h01.jpg: not named like the Taiwanese set's PPTVeNN.jpg"):
        read_dataset(f"taiwanese:{tmp_path}", faces="crops")
