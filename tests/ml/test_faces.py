"""ml.faces through its public functions, on real photos and images made here."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.faces import FaceFinding, clip_box, crop_whole_image, find_faces
from ml.labels import INPUT_SIZE

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# In tests/fixtures/astronaut.jpg (skimage.data.astronaut(), NASA, public domain, at 320 px),
# Eileen Collins' face spans about x 112-171, y 51-110; FACE_CROP frames it as FER2013 would.
ASTRONAUT_FACE_CENTRE = (142, 81)
FACE_CROP = (106, 45, 178, 117)


@pytest.fixture
def astronaut() -> Image.Image:
    with Image.open(FIXTURES / "astronaut.jpg") as image:
        return image.convert("RGB")


def gradient_photo() -> Image.Image:
    """A faceless 640x480 photo: a colour gradient with noise."""
    generator = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 640)[None, :, None] * np.linspace(0.3, 1, 480)[:, None, None]
    noise = generator.normal(0, 12, (480, 640, 3))
    pixels = np.clip(ramp * np.array([1.0, 0.6, 0.3]) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def assert_model_ready(finding: FaceFinding) -> None:
    for face in finding.faces:
        assert face.crop.shape == (INPUT_SIZE, INPUT_SIZE)
        assert face.crop.dtype == np.uint8


def test_astronaut_photo_has_one_face_boxed_around_it(astronaut: Image.Image) -> None:
    finding = find_faces(astronaut)

    assert not finding.whole_image
    assert len(finding.faces) == 1
    face = finding.faces[0]
    x, y, w, h = face.box
    assert x < ASTRONAUT_FACE_CENTRE[0] < x + w
    assert y < ASTRONAUT_FACE_CENTRE[1] < y + h
    assert 30 < w < 80 and 30 < h < 80
    assert face.score is not None and face.score > 0.5
    assert face.landmarks is not None and len(face.landmarks) == 6
    left_eye, right_eye = face.landmarks[:2]
    assert x < left_eye[0] < right_eye[0] < x + w
    assert_model_ready(finding)


def test_crop_levels_a_tilted_face(astronaut: Image.Image) -> None:
    upright = find_faces(astronaut).faces[0].crop
    tilted_photo = astronaut.rotate(20, resample=Image.Resampling.BILINEAR, center=ASTRONAUT_FACE_CENTRE)
    tilted_crop = Image.fromarray(upright).rotate(20, resample=Image.Resampling.BILINEAR)

    tilted = find_faces(tilted_photo)

    assert len(tilted.faces) == 1
    levelled_difference = np.abs(tilted.faces[0].crop.astype(int) - upright.astype(int)).mean()
    tilted_difference = np.abs(np.asarray(tilted_crop, dtype=int) - upright.astype(int)).mean()
    assert levelled_difference < tilted_difference / 3


def test_two_faces_side_by_side_are_both_found(astronaut: Image.Image) -> None:
    head = astronaut.crop((92, 21, 192, 121)).resize((160, 160))
    photo = gradient_photo()
    photo.paste(head, (80, 160))
    photo.paste(head, (400, 160))

    finding = find_faces(photo)

    assert not finding.whole_image
    assert sorted(face.box[0] // 320 for face in finding.faces) == [0, 1]
    assert_model_ready(finding)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_any_image_mode_is_searched(astronaut: Image.Image, mode: str) -> None:
    if mode == "I;16":
        image = Image.fromarray(np.asarray(astronaut.convert("L"), dtype=np.uint16) * 257)
    else:
        image = astronaut.convert(mode)

    finding = find_faces(image)

    assert len(finding.faces) == 1
    assert_model_ready(finding)


def test_faceless_photo_has_no_face() -> None:
    finding = find_faces(gradient_photo())

    assert finding == FaceFinding(faces=[], whole_image=False)


@pytest.mark.parametrize("size", [(1, 5000), (30, 400), (400, 90)])
def test_small_thin_strip_is_not_taken_for_a_face_crop(size: tuple[int, int]) -> None:
    strip = Image.new("L", size, 128)

    assert find_faces(strip) == FaceFinding(faces=[], whole_image=False)


def test_fer2013_sized_crop_is_classified_whole(astronaut: Image.Image) -> None:
    crop = astronaut.convert("L").crop(FACE_CROP).resize((INPUT_SIZE, INPUT_SIZE))

    finding = find_faces(crop)

    assert finding.whole_image
    assert len(finding.faces) == 1
    assert finding.faces[0].box == (0, 0, INPUT_SIZE, INPUT_SIZE)
    assert np.array_equal(finding.faces[0].crop, np.asarray(crop))


def test_large_tight_face_crop_is_classified_whole(astronaut: Image.Image) -> None:
    crop = astronaut.crop(FACE_CROP).resize((240, 240), Image.Resampling.BICUBIC)

    finding = find_faces(crop)

    assert finding.whole_image
    assert [face.box for face in finding.faces] == [(0, 0, 240, 240)]
    assert_model_ready(finding)


def test_crop_whole_image_is_grey_input_size() -> None:
    transparent = Image.new("RGBA", (300, 200), (255, 0, 0, 0))

    crop = crop_whole_image(transparent)

    assert crop.shape == (INPUT_SIZE, INPUT_SIZE)
    assert crop.dtype == np.uint8
    assert (crop == 255).all()  # transparency is laid on white


def test_threads_share_the_detector(astronaut: Image.Image) -> None:
    expected = find_faces(astronaut).faces[0].box

    with ThreadPoolExecutor(max_workers=4) as pool:
        boxes = list(pool.map(lambda _: find_faces(astronaut).faces[0].box, range(32)))

    assert boxes == [expected] * 32


@pytest.mark.parametrize(
    ("box", "clipped"),
    [
        ((10.4, 20.6, 30.0, 40.0), (10, 21, 30, 40)),
        ((-5.0, -5.0, 20.0, 20.0), (0, 0, 15, 15)),
        ((90.0, 50.0, 30.0, 30.0), (90, 50, 10, 30)),
        ((-30.0, 10.0, 25.0, 25.0), None),  # wholly in the padding left of the image
        ((10.0, 120.0, 20.0, 20.0), None),  # below it
    ],
)
def test_clip_box_cuts_to_the_image_and_drops_boxes_outside(box: tuple, clipped: tuple | None) -> None:
    assert clip_box(box, 100, 100) == clipped
