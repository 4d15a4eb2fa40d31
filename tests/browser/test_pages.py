"""The site in a real browser: sign up, upload, webcam, review, and every page at phone width."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User
from classifier import services
from classifier.models import Capture
from ml.labels import EXPRESSIONS
from tests.browser.fake_camera import ASTRONAUT, webcam_frame

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or fails in CI, saying so
    expect = None

pytestmark = pytest.mark.slow

RESULT_URL = re.compile(r"/captures/(\d+)/$")
PHONE = {"width": 390, "height": 844}


def upload_photo(owner: User) -> Capture:
    """A 640x480 photo with a face: wider than a phone, so the result page must scale it down."""
    jpeg = io.BytesIO()
    webcam_frame().save(jpeg, "JPEG", quality=90)
    image = SimpleUploadedFile("astronaut.jpg", jpeg.getvalue(), content_type="image/jpeg")
    return services.capture_create(owner=owner, image=image, source=Capture.Source.UPLOAD)


def assert_one_face_with_seven_bars(page) -> None:
    expect(page.locator(".face-box")).to_have_count(1)
    expect(page.locator(".face-box")).to_be_visible()
    expect(page.locator(".face-card .bar-row .bar-label")).to_have_text(list(EXPRESSIONS))


def test_sign_up_upload_and_review_a_photo(open_page) -> None:
    page = open_page()
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password:", exact=True).fill("correct horse battery staple")
    page.get_by_label("Password confirmation").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign up").click()

    page.get_by_label("Photo").set_input_files(ASTRONAUT)
    page.get_by_role("button", name="Recognise expressions").click()
    page.wait_for_url(RESULT_URL)

    assert_one_face_with_seven_bars(page)
    predicted = Capture.objects.get().faces.get().predicted_label
    page.get_by_role("button", name=f"Face 1: right, it is {predicted}").click()
    expect(page.locator(".review-state")).to_contain_text("Reviewed: right")

    other = next(label for label in EXPRESSIONS if label != predicted)
    page.get_by_role("button", name=f"Face 1: wrong, it is {other}").click()
    expect(page.locator(".review-state")).to_contain_text(f"Reviewed: wrong, it is {other}")
    face = Capture.objects.get().faces.get()
    assert (face.true_label, face.is_correct, face.reviewed_by.username) == (other, False, "ada")


def test_webcam_capture_shows_the_result_of_a_webcam_photo(open_page, user: User) -> None:
    page = open_page(user=user)
    page.goto("/webcam/")
    preview = page.get_by_label("Live preview from your camera")
    expect(preview).to_be_visible()
    # Playing: the fake camera's frames advance the preview's clock.
    preview.evaluate("video => new Promise(played => video.requestVideoFrameCallback(() => played()))")
    assert preview.evaluate("video => [video.videoWidth, video.videoHeight, video.paused]") == [640, 480, False]

    page.get_by_role("button", name="Take photo and recognise expressions").click()
    page.wait_for_url(RESULT_URL)

    assert_one_face_with_seven_bars(page)
    capture = Capture.objects.get()
    assert (capture.owner, capture.source, capture.width, capture.height) == (user, "webcam", 640, 480)
    expect(page.locator("h1")).to_contain_text("Webcam, ")


def test_denied_camera_says_so_and_offers_an_upload(open_page, user: User) -> None:
    page = open_page(user=user, camera=False)
    page.goto("/webcam/")

    problem = page.get_by_role("alert")
    expect(problem).to_contain_text("Camera access is blocked")
    expect(problem.get_by_role("link", name="Upload a photo instead")).to_have_attribute("href", "/")
    expect(page.get_by_role("button", name="Take photo and recognise expressions")).to_be_hidden()
    expect(page.get_by_label("Live preview from your camera")).to_be_hidden()


def test_camera_on_a_plain_http_address_asks_for_https(open_page, user: User, insecure_site: str) -> None:
    """Browsers hide the camera from pages served over http, except from localhost: the page says so."""
    page = open_page(user=user, site=insecure_site)
    page.goto("/webcam/")

    problem = page.get_by_role("alert")
    expect(problem).to_contain_text("open this site over https")
    expect(problem.get_by_role("link", name="Upload a photo instead")).to_be_visible()


def test_a_disabled_button_looks_disabled(open_page, user: User) -> None:
    page = open_page(user=user)
    page.goto("/")
    button = page.get_by_role("button", name="Recognise expressions")
    enabled = button.evaluate("button => [getComputedStyle(button).opacity, getComputedStyle(button).cursor]")
    button.evaluate("button => { button.disabled = true; }")
    disabled = button.evaluate("button => [getComputedStyle(button).opacity, getComputedStyle(button).cursor]")
    assert enabled == ["1", "pointer"]
    assert float(disabled[0]) < 0.7 and disabled[1] == "not-allowed"


def test_the_tag_of_a_face_in_the_photos_top_right_corner_stays_on_the_photo(open_page, user: User) -> None:
    frame = Image.new("RGB", (640, 480), (90, 90, 90))
    with Image.open(ASTRONAUT) as photo:
        frame.paste(photo.convert("RGB").resize((300, 300)), (460, -50))
    png = io.BytesIO()
    frame.save(png, "PNG")
    capture = services.capture_create(owner=user, image=SimpleUploadedFile("corner.png", png.getvalue()))
    [face] = capture.faces.all()
    assert face.box_y == 0 and face.box_x > 540  # a tag about 120 px long read rightwards from it would not fit

    page = open_page(user=user)
    page.goto(f"/captures/{capture.pk}/")

    photo, tag = page.locator(".capture-photo img").bounding_box(), page.locator(".face-tag").bounding_box()
    assert photo["x"] <= tag["x"] and tag["x"] + tag["width"] <= photo["x"] + photo["width"]
    assert photo["y"] <= tag["y"] and tag["y"] + tag["height"] <= photo["y"] + photo["height"]
