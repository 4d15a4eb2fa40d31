"""The webcam page's live mode in a real browser, its camera filming the astronaut."""

import time

import pytest

from classifier.models import Capture
from tests.browser.conftest import launch_chromium
from tests.browser.fake_camera import webcam_frame, write_y4m

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or fails in CI, saying so
    expect = None

pytestmark = pytest.mark.slow


def updates(page) -> int:
    return int(page.locator("[data-webcam]").get_attribute("data-webcam-updates") or 0)


def test_live_mode_draws_the_face_over_the_preview_pauses_and_stores_nothing(open_page, user) -> None:
    page = open_page(user=user)
    page.goto("/webcam/")
    expect(page.locator("[data-webcam]")).to_have_attribute("data-webcam-live", "on")

    box = page.locator(".webcam-box")
    expect(box).to_have_count(1)
    expect(box).to_contain_text("1 · ")
    # The box lies over the astronaut's face, inside the preview. Measured in one go: each answer redraws it.
    video_left, video_right, box_left, box_right = page.wait_for_function(
        """() => {
            const box = document.querySelector('.webcam-box');
            if (!box) return null;
            const video = document.querySelector('[data-webcam-preview]').getBoundingClientRect();
            const drawn = box.getBoundingClientRect();
            return [video.left, video.right, drawn.left, drawn.right];
        }"""
    ).json_value()
    assert video_left < box_left < box_right < video_right
    summary = page.locator("[data-webcam-live-summary]")
    expect(summary).to_contain_text("1 face: 1 ")
    assert summary.bounding_box()["width"] <= 1  # for screen readers, not shown

    started = updates(page)
    time.sleep(1.0)
    assert updates(page) > started  # it keeps reading

    page.get_by_role("button", name="Pause live reading").click()
    expect(box).to_have_count(0)
    paused_at = updates(page)
    time.sleep(0.5)
    assert updates(page) <= paused_at + 1  # at most the answer already on its way
    page.get_by_role("button", name="Resume live reading").click()
    expect(page.locator(".webcam-box")).to_have_count(1)
    assert not Capture.objects.exists()  # live reading stores nothing


def test_a_face_in_the_top_corner_keeps_its_tag_on_the_preview(browser, open_page, user, tmp_path) -> None:
    # The camera films her face at its top left edge (found at 12, 0, 97x73 in the 640x480 frame), which
    # the mirrored preview shows at the top right: a tag above the box, reaching rightwards, would be
    # clipped by the stage.
    corner = write_y4m(tmp_path / "corner.y4m", webcam_frame(portrait_at=(-150, -95)))
    chromium = launch_chromium(browser.browser_type, corner)
    try:
        page = open_page(chromium=chromium, user=user)
        page.goto("/webcam/")
        expect(page.locator(".webcam-box")).to_have_count(1)
        expect(page.locator(".webcam-box span")).to_have_class("webcam-tag-inside webcam-tag-leftwards")
        # Measured in one go, once a box is drawn: each answer redraws it.
        stage, tag = page.wait_for_function(
            """() => {
                const tag = document.querySelector('.webcam-box span');
                if (!tag) return null;
                const stage = document.querySelector('[data-webcam-stage]');
                return [stage, tag].map((element) => element.getBoundingClientRect().toJSON());
            }"""
        ).json_value()
        assert stage["left"] <= tag["left"] and tag["right"] <= stage["right"]
        assert stage["top"] <= tag["top"] and tag["bottom"] <= stage["bottom"]
    finally:
        chromium.close()
