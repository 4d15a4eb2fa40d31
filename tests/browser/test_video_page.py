"""The videos pages in a real browser: upload a video, follow the worker's progress, open a frame from the timeline."""

import re

import pytest

from classifier import video_reading
from classifier.models import Video
from tests.classifier.video_corpus import face_video

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or fails in CI, saying so
    expect = None

pytestmark = pytest.mark.slow

VIDEO_URL = re.compile(r"/videos/(\d+)/$")
FRAME_URL = re.compile(r"/captures/(\d+)/#face-(\d+)$")
POLLED_MS = 10_000  # the page polls every 2 s


def test_upload_a_video_follow_its_reading_then_open_a_frame_from_its_timeline(open_page, user, tmp_path) -> None:
    path = tmp_path / "walk.mp4"
    path.write_bytes(face_video())
    page = open_page(user=user)
    page.goto("/videos/")
    expect(page.get_by_text("up to 200 MB, 10 min")).to_be_visible()
    page.get_by_label("Video:", exact=True).set_input_files(path)
    page.get_by_label("Frames read per second").fill("2.5")
    page.get_by_role("button", name="Upload and read").click()
    page.wait_for_url(VIDEO_URL)

    expect(page.locator("[data-video-summary]")).to_have_text("waiting for the worker")
    video = Video.objects.get()
    assert video.samples_per_second == 2.5 and video.samples_total == 5
    video_reading.video_read(video.pk)  # what the worker's task runs
    # The page sees the video read and reloads by itself, showing the timeline.
    expect(page.locator(".timeline-mark")).to_have_count(5, timeout=POLLED_MS)
    expect(page.locator("[data-video-progress]")).to_have_count(0)

    page.locator(".timeline-mark").nth(2).click()
    page.wait_for_url(FRAME_URL)
    expect(page.get_by_role("heading", name="Frame at 0:00.8 of walk.mp4")).to_be_visible()
    expect(page.locator(".face-box")).to_have_count(1)
    page.get_by_role("link", name="Back to the video's timeline").click()
    page.wait_for_url(VIDEO_URL)
