"""Several photos uploaded at once from the upload page, one refused among them."""

import pytest

from classifier.models import Capture
from tests.browser.fake_camera import ASTRONAUT

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or fails in CI, saying so
    expect = None

pytestmark = pytest.mark.slow


def test_three_files_at_once_two_stored_one_refused_with_its_reason(open_page, user) -> None:
    page = open_page(user=user)
    page.goto("/")
    photo = ASTRONAUT.read_bytes()
    page.get_by_label("Photo").set_input_files(
        [
            {"name": "first.jpg", "mimeType": "image/jpeg", "buffer": photo},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a photo"},
            {"name": "second.jpg", "mimeType": "image/jpeg", "buffer": photo},
        ]
    )
    page.get_by_role("button", name="Recognise expressions").click()

    items = page.locator("[data-upload-list] li")
    expect(items).to_have_count(3)
    expect(items.nth(2)).to_have_attribute("data-state", "done")
    expect(items.nth(0)).to_contain_text("first.jpg: 1 face found")
    expect(items.nth(1)).to_contain_text("notes.txt: refused. This file is not an image we can read")
    assert Capture.objects.count() == 2
    items.nth(0).get_by_role("link").click()
    page.wait_for_url("**/captures/*/")
