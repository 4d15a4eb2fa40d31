"""Every page of the site fits a phone's width (390 px): nothing scrolls sideways, nothing is cut off."""

import pytest

from classifier import services
from classifier.models import ModelVersion, TrainingJob
from tests.browser.test_pages import PHONE, upload_photo
from tests.classifier.video_corpus import face_video, read, upload

pytestmark = pytest.mark.slow


def overflowing_pages(page, pages: list[tuple[str, str]]) -> dict:
    """The pages, of (path, a selector that shows it is drawn), wider than the screen, with the widest element."""
    overflowing = {}
    for path, ready in pages:
        page.goto(path)
        page.wait_for_selector(ready)
        widths = page.evaluate(
            """() => {
                const limit = window.innerWidth;
                const wide = [...document.querySelectorAll('body *')]
                    // Off-screen on purpose: the skip link until focused, text for screen readers only.
                    .filter((element) => !element.closest('.skip-link, .visually-hidden, .long-label'))
                    .filter((element) => {
                        const box = element.getBoundingClientRect();
                        return box.width > 0 && (box.right > limit + 1 || box.left < -1);
                    })
                    .map((element) => `${element.tagName.toLowerCase()}.${element.className}`)
                    .slice(0, 5);
                return [document.scrollingElement.scrollWidth, limit, wide];
            }"""
        )
        if widths[0] > widths[1] or widths[2]:
            overflowing[path] = widths
    return overflowing


def test_every_page_fits_a_phone_for_a_user(open_page, user) -> None:
    capture = upload_photo(user)
    # A read video with a long name, its timeline and a frame; and one waiting for the worker.
    video = read(user, face_video(faces=2), name="a-very-long-video-file-name-from-a-phone-camera-20261201.mp4")
    frame = video.frames.first()
    queued = services.video_create(owner=user, file=upload("queued.mp4", face_video()))
    page = open_page(user=user, viewport=PHONE)

    assert (
        overflowing_pages(
            page,
            [
                ("/", "form"),
                ("/webcam/", "[data-webcam-state=live]"),
                ("/captures/", ".capture-item img"),
                (f"/captures/{capture.pk}/", ".face-card"),
                (f"/captures/{capture.pk}/delete/", "form"),
                ("/review/", ".review-picture"),
                ("/videos/", ".video-item"),
                (f"/videos/{video.pk}/", ".timeline svg"),
                (f"/videos/{queued.pk}/", "progress"),
                (f"/captures/{frame.pk}/", ".face-card"),
                (f"/videos/{video.pk}/delete/", "form"),
                ("/accuracy/", "h1"),
                ("/accounts/", ".tokens, form"),
                ("/accounts/password/", "form"),
            ],
        )
        == {}
    )


def test_every_page_fits_a_phone_for_staff(open_page, staff_user) -> None:
    capture = upload_photo(staff_user)
    face = capture.faces.get()
    services.face_review(face=face, reviewer=staff_user, true_label="sad" if face.predicted_label != "sad" else "fear")
    # A finished job with a long error, and a version with the gate's long verdict, as the page shows them.
    TrainingJob.objects.create(
        requested_by=staff_user,
        base_version=face.model_version,
        state="failed",
        error="The worker stopped: no sign of life since 2026-12-01 10:00:00 UTC. Nothing it trained was kept.",
    )
    ModelVersion.objects.filter(pk=face.model_version.pk).update(
        decision="Rejected, fer2013-vgg48-v5 stays active: on 163 held-out reviewed faces the candidate reads "
        "64.4% (56.8%-71.4%), the active version 47.2% (39.7%-54.9%); difference +17.2 points"
    )
    page = open_page(user=staff_user, viewport=PHONE)

    assert (
        overflowing_pages(page, [("/staff/training/", "h1"), ("/accuracy/", "h1"), ("/accuracy/?scope=site", "h1")])
        == {}
    )


def test_the_landing_sign_in_and_sign_up_pages_fit_a_phone(open_page) -> None:
    page = open_page(viewport=PHONE)

    assert (
        overflowing_pages(page, [("/", ".landing"), ("/accounts/login/", "form"), ("/accounts/signup/", "form")]) == {}
    )
