import io

import numpy as np
import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse
from PIL import Image

from classifier.models import Capture, Face
from classifier.templatetags.captures import FaceGeometry
from ml.labels import EXPRESSIONS
from tests.classifier.corpus import (
    ACCEPTED_UPLOADS,
    REFUSED_UPLOADS,
    astronaut,
    encode,
    exif_rotated_jpeg,
    face_photo_bytes,
    first_frame_red,
    float_tiff,
    no_face_photo,
    nothing_stored,
    stored_files,
    tight_crop_bytes,
    two_faces_photo,
    upload,
)


def post_photo(client, name: str, content: bytes):
    return client.post(reverse("classifier:capture_new"), {"image": upload(name, content)})


def test_photo_with_a_face_shows_a_box_a_label_and_seven_bars(user_client, model_version, media_dir):
    response = post_photo(user_client, "me.jpg", face_photo_bytes())
    capture = Capture.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:capture_detail", args=[capture.pk])
    face = capture.faces.get()
    assert face.model_version == model_version
    assert face.predicted_label in EXPRESSIONS
    assert sum(face.probabilities.values()) == pytest.approx(1, abs=1e-4)
    assert 90 < face.box_x < 140 and 30 < face.box_y < 80  # the astronaut's face, not the whole photo

    page = user_client.get(response["Location"]).content.decode()
    assert page.count('class="face-box"') == 1
    assert f"{face.predicted_label} {round(face.confidence * 100)}%" in page
    assert page.count('class="bar-label"') == 7
    assert reverse("classifier:capture_image", args=[capture.pk]) in page
    assert len(stored_files(media_dir)) == 2  # the image and its thumbnail


def test_every_face_in_a_photo_is_found(user_client, model_version):
    post_photo(user_client, "two.png", encode(two_faces_photo(), "PNG"))
    capture = Capture.objects.get()
    assert capture.faces.count() == 2
    page = user_client.get(reverse("classifier:capture_detail", args=[capture.pk])).content.decode()
    assert page.count('class="face-box"') == 2
    assert page.count('class="bar-label"') == 14


def test_tight_face_crop_is_classified_whole_and_says_so(user_client, model_version):
    post_photo(user_client, "fer2013.png", tight_crop_bytes())
    capture = Capture.objects.get()
    assert capture.whole_image
    assert capture.faces.get().box == (0, 0, 48, 48)
    page = user_client.get(reverse("classifier:capture_detail", args=[capture.pk])).content.decode()
    assert "already a tight face crop" in page


def test_no_face_image_is_kept_and_marked(user_client, model_version, media_dir):
    response = post_photo(user_client, "wall.png", encode(no_face_photo(), "PNG"))
    capture = Capture.objects.get()
    assert response.status_code == 302
    assert not capture.faces.exists() and not capture.whole_image
    assert len(stored_files(media_dir)) == 2
    page = user_client.get(response["Location"]).content.decode()
    assert "No face found" in page
    assert "from about 24 pixels across" in page and "evenly lit" in page
    assert "No face" in user_client.get(reverse("classifier:capture_list")).content.decode()


def test_exif_orientation_is_applied_and_metadata_is_dropped(user_client, model_version, media_dir):
    post_photo(user_client, "sideways.jpg", exif_rotated_jpeg())
    capture = Capture.objects.get()
    assert (capture.width, capture.height) == (200, 400)
    stored = Image.open(media_dir / capture.image.name)
    assert stored.size == (200, 400)
    assert stored.getpixel((100, 20))[0] > 200 and stored.getpixel((100, 20))[1] < 60  # red is on top, as viewed
    assert len(stored.getexif()) == 0 and "exif" not in stored.info
    assert b"PhoneMaker" not in (media_dir / capture.image.name).read_bytes()


@pytest.mark.parametrize("name", ACCEPTED_UPLOADS)
def test_odd_but_valid_images_are_accepted(user_client, model_version, media_dir, name):
    response = post_photo(user_client, name, ACCEPTED_UPLOADS[name]())
    assert response.status_code == 302, response.content.decode()[:2000]
    capture = Capture.objects.get()
    stored = Image.open(io.BytesIO((media_dir / capture.image.name).read_bytes()))
    assert stored.format == "JPEG" and stored.mode in ("RGB", "L")
    assert stored.size == (capture.width, capture.height)


@pytest.mark.parametrize("format", ["GIF", "WEBP", "PNG", "TIFF"])
def test_animated_and_multi_page_images_keep_their_first_frame(user_client, model_version, media_dir, format):
    response = post_photo(user_client, f"two-frames.{format.lower()}", first_frame_red(format))
    assert response.status_code == 302
    stored = Image.open(media_dir / Capture.objects.get().image.name).convert("RGB")
    red, green, blue = stored.getpixel((80, 60))
    assert red > 200 and green < 60 and blue < 60


def test_a_floating_point_tiff_keeps_its_grey_levels(user_client, model_version, media_dir):
    post_photo(user_client, "float.tiff", float_tiff())
    stored = np.asarray(Image.open(media_dir / Capture.objects.get().image.name).convert("L"), dtype=np.float32)
    original = np.asarray(astronaut().convert("L"), dtype=np.float32)
    assert abs(stored.mean() - original.mean()) < 3


@pytest.mark.parametrize("name", REFUSED_UPLOADS)
def test_bad_uploads_are_refused_with_a_message_and_leave_nothing(user_client, model_version, media_dir, name):
    make_content, status, message = REFUSED_UPLOADS[name]
    response = post_photo(user_client, name, make_content())
    assert response.status_code == status
    assert message in response.content.decode()
    assert nothing_stored(media_dir)


def test_an_upload_over_ten_megabytes_is_refused(user_client, model_version, media_dir):
    response = post_photo(user_client, "huge.jpg", face_photo_bytes() + b"\0" * (10 * 1024 * 1024))
    assert response.status_code == 413
    # 10.02 MB: rounded up, so the message never says a file over the limit is the limit's size.
    assert "The file is 10.1 MB; the limit is 10 MB." in response.content.decode()
    assert nothing_stored(media_dir)


def test_a_post_without_a_file_shows_the_form_error(user_client, model_version, media_dir):
    response = user_client.post(reverse("classifier:capture_new"), {})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert nothing_stored(media_dir)


def test_without_a_model_version_the_upload_says_so_and_stores_nothing(user_client, settings, tmp_path, media_dir):
    settings.EMOTIONSITE_MODEL_DIR = tmp_path / "no-models"
    response = post_photo(user_client, "me.jpg", face_photo_bytes())
    assert response.status_code == 503
    assert "model is not available" in response.content.decode()
    assert nothing_stored(media_dir)
    assert not Face.objects.exists()


def test_faces_in_a_large_photo_are_boxed_in_its_own_pixels(user_client, model_version):
    # Searched in a copy scaled down to 2048 px; the box must come back in the 2560 px photo's coordinates.
    large = two_faces_photo().resize((2560, 1422))
    post_photo(user_client, "large.jpg", encode(large, "JPEG", quality=80))
    capture = Capture.objects.get()
    assert (capture.width, capture.height) == (2560, 1422)
    boxes = sorted(face.box for face in capture.faces.all())
    assert len(boxes) == 2
    left, right = boxes
    assert 300 < left[0] < 600 and 1600 < right[0] < 1900  # ~(59, 67) and ~(244, 70) in the 360 px photo, x7.1
    assert all(350 < box[2] < 550 and box[1] + box[3] <= 1422 for box in boxes)


def test_the_upload_form_takes_webcam_frames_too(user_client, model_version):
    frame = encode(two_faces_photo(), "JPEG")
    response = user_client.post(
        reverse("classifier:capture_new"), {"image": upload("frame.jpg", frame), "source": "webcam"}
    )
    assert response.status_code == 302
    assert Capture.objects.get().source == "webcam"
    assert "<h1>Webcam, " in user_client.get(response["Location"]).content.decode()


def test_a_huge_upload_is_refused_before_it_is_read(user_client, model_version, media_dir):
    response = post_photo(user_client, "huge.jpg", b"\xff\xd8" + b"\0" * (11 * 1024 * 1024))
    assert response.status_code == 413
    assert "over the limit of 10 MB" in response.content.decode()
    assert nothing_stored(media_dir)


def test_an_unreadable_content_length_is_not_a_server_error(user_client, model_version, media_dir):
    response = user_client.post(
        reverse("classifier:capture_new"), {"image": upload("me.jpg", face_photo_bytes())}, CONTENT_LENGTH="abc"
    )
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert nothing_stored(media_dir)


def test_pages_link_a_favicon_that_exists(user_client):
    page = user_client.get(reverse("classifier:capture_new")).content.decode()
    assert f'<link rel="icon" href="{static("favicon.svg")}" type="image/svg+xml">' in page
    assert finders.find("favicon.svg") is not None


def test_the_upload_page_offers_the_webcam(user_client):
    page = user_client.get(reverse("classifier:capture_new")).content.decode()
    form = page[page.index('<section class="narrow">') :]
    assert f'<a href="{reverse("classifier:capture_webcam")}">take one with your webcam</a>' in form


def test_an_unknown_source_says_what_is_wrong(user_client, model_version, media_dir):
    response = user_client.post(
        reverse("classifier:capture_new"), {"image": upload("me.jpg", face_photo_bytes()), "source": "scanner"}
    )
    assert response.status_code == 400
    assert "Select a valid choice. scanner is not one of the available choices." in response.content.decode()
    assert nothing_stored(media_dir)


def test_the_upload_limits_shown_follow_the_settings(user_client, settings):
    settings.EMOTIONSITE_MAX_UPLOAD_BYTES = 3 * 2**20
    settings.EMOTIONSITE_MAX_PIXELS = 12_000_000
    page = user_client.get(reverse("classifier:capture_new")).content.decode()

    assert "up to 3 MB and 12 megapixels." in page
    # Decoding holds at most 100 MB: 26 megapixels of colour, 4 bytes each, unless a JPEG is read smaller.
    settings.EMOTIONSITE_MAX_PIXELS, settings.EMOTIONSITE_MAX_DECODED_BYTES = 40_000_000, 100 * 2**20
    page = user_client.get(reverse("classifier:capture_new")).content.decode()
    assert "up to 3 MB and 40 megapixels (26 for a colour image other than a JPEG)." in page


def test_a_jpeg_comment_is_not_kept(user_client, model_version, media_dir):
    commented = encode(Image.new("RGB", (200, 150), "white"), "JPEG", comment=b"taken at 12 Elm Street")

    post_photo(user_client, "commented.jpg", commented)

    stored = (media_dir / Capture.objects.get().image.name).read_bytes()
    assert b"Elm Street" not in stored and "comment" not in Image.open(io.BytesIO(stored)).info
    thumbnail = (media_dir / Capture.objects.get().thumbnail.name).read_bytes()
    assert b"Elm Street" not in thumbnail


@pytest.mark.parametrize(
    "box, placement",
    [
        ((100, 200, 80, 80), ""),  # left half, well below the top: above the box, reading rightwards
        ((500, 200, 80, 80), "face-tag-leftwards"),
        ((100, 10, 80, 80), "face-tag-inside"),  # 10 px from the top of a 640 px wide photo
        ((560, 0, 80, 80), "face-tag-leftwards face-tag-inside"),
        ((280, 200, 80, 80), ""),  # centred exactly: rightwards still fits
        ((100, 52, 80, 80), ""),  # 52 px down: room above for the tag
    ],
)
def test_a_face_tag_is_placed_to_stay_on_the_photo(box, placement):
    capture = Capture(width=640, height=480)
    x, y, width, height = box
    face = Face(box_x=x, box_y=y, box_width=width, box_height=height, confidence=0.5, probabilities={})

    assert FaceGeometry(face, capture).tag_placement == placement
