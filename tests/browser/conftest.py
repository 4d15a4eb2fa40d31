"""One headless Chromium for all browser tests, a fake webcam that films a real face, and signed-in pages.

Playwright drives Debian's Chromium (/usr/bin/chromium); it never downloads a browser. Without that
binary the tests skip, unless EMOTIONSITE_REQUIRE_BROWSER=1 (CI), where they fail.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from django.conf import settings as django_settings
from django.test import Client

from accounts.models import User
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.browser.fake_camera import webcam_frame, write_y4m

DESKTOP = {"width": 1280, "height": 800}
INSECURE_HOST = "emotionsite.test"
# Fail fast: every page of the site answers in well under a second, classification included.
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def fake_camera_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_y4m(tmp_path_factory.mktemp("camera") / "astronaut.y4m", webcam_frame())


def browser_unavailable(reason: str) -> NoReturn:
    """Skip, or fail where a browser is required (CI sets EMOTIONSITE_REQUIRE_BROWSER=1)."""
    if os.environ.get("EMOTIONSITE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"EMOTIONSITE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


# Package scope (tests/browser has an __init__.py for it): the browser closes after the last browser test.
# While Playwright's sync API is started, the main thread has a running event loop, which would make
# Django refuse ORM calls in every later test.
@pytest.fixture(scope="package")
def browser(fake_camera_video: Path) -> Iterator:
    """Headless Chromium whose camera plays fake_camera_video; each context decides if the camera is allowed."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_unavailable("the playwright package is not installed (pip install -r requirements-dev.txt)")
    if not CHROMIUM.is_file():
        browser_unavailable(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")

    with pytest.MonkeyPatch.context() as environment:
        # The test thread (the database flush between tests, the tests' own queries) runs beside
        # Playwright's event loop; the live server answers from its own thread.
        environment.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = launch_chromium(playwright.chromium, fake_camera_video)
            yield chromium
            chromium.close()


def launch_chromium(browser_type, camera_video: Path):
    """Headless Chromium from Playwright's `browser_type`, its fake camera playing `camera_video`."""
    return browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_video}",
            # A name for the live server that is not localhost, so its pages are not a secure context.
            f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1",
        ],
    )


@pytest.fixture
def site(live_server, model_version, media_dir) -> str:
    """The live site's base URL, with the tiny model active and an empty private media folder."""
    return live_server.url


def new_page(browser, site: str, *, camera: bool = True, viewport: dict | None = None, user: User | None = None):
    """A page in a fresh browser context: camera allowed or not (headless Chromium then denies it), signed in or not."""
    context = browser.new_context(base_url=site, viewport=viewport or DESKTOP, permissions=["camera"] if camera else [])
    context.set_default_timeout(TIMEOUT_MS)
    if user is not None:
        client = Client()
        client.force_login(user)
        session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": site}])
    return context.new_page()


@pytest.fixture
def contexts(browser) -> Iterator[list]:
    """Browser contexts a test opens, closed after it."""
    opened: list = []
    yield opened
    for context in opened:
        context.close()


@pytest.fixture
def csp_violations() -> list[str]:
    """What the Content-Security-Policy blocked on the pages a test opened, as Chromium reported it."""
    return []


@pytest.fixture
def open_page(browser, site: str, contexts: list, csp_violations: list[str]):
    """open_page(camera=..., viewport=..., user=..., site=..., chromium=...) -> a new page on the live site,
    in the package's browser unless `chromium` names another (one launched with another camera video).

    Every test that opens pages also checks, at its end, that the policy blocked nothing on them."""

    def opener(*, site: str = site, chromium=browser, **options):
        page = new_page(chromium, site, **options)
        contexts.append(page.context)
        # Chromium says on the console what the policy refused ("... violates the following Content
        # Security Policy directive ..."), for scripts, styles, images, requests and inline handlers alike.
        page.on(
            "console",
            lambda message: (
                csp_violations.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )
        return page

    yield opener
    assert csp_violations == [], "the Content-Security-Policy blocked something on these pages"


@pytest.fixture
def insecure_site(site: str, settings) -> str:
    """The live site under a name other than localhost: plain http there is not a secure context."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, INSECURE_HOST]
    return site.replace("localhost", INSECURE_HOST)
