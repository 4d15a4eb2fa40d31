"""The review queue in a real browser, with the keyboard only."""

import re

import pytest

from classifier.models import Face
from ml.labels import EXPRESSIONS
from tests.browser.test_pages import upload_photo

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or fails in CI, saying so
    expect = None

pytestmark = pytest.mark.slow


def press(page, key: str) -> None:
    """The key, once the page's script listens: a module script runs only when the page is parsed."""
    page.wait_for_load_state("domcontentloaded")
    page.keyboard.press(key)


def open_queue(open_page, user, photos: int):
    """The review queue of `photos` new photos of the user's, once it counts them; and their captures."""
    captures = [upload_photo(user) for _ in range(photos)]
    page = open_page(user=user)
    page.goto("/review/")
    expect(page.locator("#review-counts")).to_contain_text(f"{photos} face{'' if photos == 1 else 's'} left to review")
    return page, captures


def test_the_queue_is_reviewed_with_the_keyboard(open_page, user) -> None:
    page, captures = open_queue(open_page, user, 3)
    faces = [capture.faces.get() for capture in captures]
    expect(page.locator(".top-three li")).to_have_count(3)

    press(page, "Enter")  # right
    expect(page.locator("#review-counts")).to_contain_text("2 faces left to review")
    reviewed = Face.objects.get(reviewed_at__isnull=False)
    assert reviewed.is_correct is True

    wrong = next(index for index, label in enumerate(EXPRESSIONS, 1) if label != faces[1].predicted_label)
    press(page, str(wrong))  # wrong: it is that expression
    expect(page.locator("#review-counts")).to_contain_text("1 face left to review")
    assert Face.objects.filter(true_label=EXPRESSIONS[wrong - 1], is_correct=False).count() == 1

    press(page, "u")  # undo the last review
    expect(page.locator("#review-counts")).to_contain_text("2 faces left to review")
    press(page, "s")  # skip
    expect(page.locator("#review-counts")).to_contain_text("1 skipped for now")
    assert Face.objects.filter(reviewed_at__isnull=False).count() == 1


def test_enter_on_a_focused_link_follows_it_and_reviews_nothing(open_page, user) -> None:
    page, _ = open_queue(open_page, user, 1)

    page.get_by_role("link", name="Accuracy").first.focus()
    press(page, "Enter")

    expect(page).to_have_url(re.compile(r"/accuracy/"))
    assert not Face.objects.filter(reviewed_at__isnull=False).exists()


def test_a_key_pressed_twice_quickly_reviews_once_and_says_nothing_of_someone_else(open_page, user) -> None:
    page, _ = open_queue(open_page, user, 2)

    press(page, "3")
    page.keyboard.press("3")  # at once, while the first is on its way

    expect(page.locator("#review-counts")).to_contain_text("1 face left to review")
    expect(page.locator("body")).not_to_contain_text("Someone reviewed that face")
    assert Face.objects.filter(reviewed_at__isnull=False).count() == 1


def test_once_a_form_is_sent_by_a_click_or_a_key_the_page_sends_no_other(open_page, user) -> None:
    upload_photo(user)
    page = open_page(user=user)
    page.goto("/review/")
    page.wait_for_load_state("domcontentloaded")

    # Submit events as a click, a key or Enter in the form would raise them, without leaving the page.
    sent = page.evaluate(
        """() => [...document.querySelectorAll("main form")].slice(0, 2).map((form) => {
            const submit = new SubmitEvent("submit", {bubbles: true, cancelable: true});
            form.dispatchEvent(submit);
            return !submit.defaultPrevented;
        })"""
    )

    assert sent == [True, False]
