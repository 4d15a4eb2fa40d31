"""The site behind the image's nginx (`docker-entrypoint.sh web`): it still tells clients apart by their
address, and each upload passes up to the site's own limit for its kind."""

import http.client
import json
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import PASSWORD
from tests.site_processes import manage, start_image_web_role, stop

# Both on this machine's loopback range: nginx sees two clients.
GUESSER, SOMEONE_ELSE = "127.0.0.2", "127.0.0.1"
# Over a photo's limit (10 MB, with its form's framing), well under a video's (200 MB).
THIRTEEN_MB = 13 * 2**20


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The image's web role, with two accounts, ada and grace; its base URL."""
    folder = tmp_path_factory.mktemp("image-web-role")
    server, base = start_image_web_role(folder)
    try:
        environment = os.environ | {
            "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        }
        for username in ("ada", "grace"):
            manage("createsuperuser", "--noinput", "--username", username, "--email", f"{username}@example.org",
                   environment=environment)  # fmt: skip
        yield base
    finally:
        stop(server)


def post(base: str, path: str, body: bytes, content_type: str, *, source: str = SOMEONE_ELSE) -> tuple[int, bytes]:
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30, source_address=(source, 0))
    try:
        connection.request("POST", path, body, {"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def token_request(base: str, source: str, username: str, password: str) -> int:
    body = json.dumps({"username": username, "password": password}).encode()
    return post(base, "/api/v1/auth/token/", body, "application/json", source=source)[0]


def test_an_address_paused_for_its_failed_sign_ins_pauses_no_other_address(site):
    # Five wrong passwords, for as many accounts, from one address: the fifth pauses that address.
    statuses = [token_request(site, GUESSER, f"guess-{number}", "wrong password") for number in range(5)]
    assert statuses == [400, 400, 400, 400, 429]
    assert token_request(site, GUESSER, "ada", PASSWORD) == 429

    # Someone else, elsewhere, signs in as before.
    assert token_request(site, SOMEONE_ELSE, "grace", PASSWORD) == 200


def test_a_body_over_a_photos_limit_is_refused_by_the_proxy_but_a_video_of_that_size_reaches_the_site(site):
    body = b"x" * THIRTEEN_MB
    status, content = post(site, "/api/v1/captures/", body, "application/octet-stream")
    assert status == 413 and json.loads(content)["detail"].startswith("The request is too large")
    # Unsigned, the site itself answers, once nginx has read it all: 401 (not nginx's 413).
    status, content = post(site, "/api/v1/videos/", body, "application/octet-stream")
    assert status == 401, content[:300]
