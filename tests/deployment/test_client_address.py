"""Behind the image's nginx, the site still tells clients apart by their address: the sign-in limits
(accounts.sign_in_limits) pause an address that failed too often, not every client at once."""

import http.client
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import PASSWORD
from tests.site_processes import manage, start_image_web_role, stop

# Both on this machine's loopback range: nginx sees two clients.
GUESSER, SOMEONE_ELSE = "127.0.0.2", "127.0.0.1"


def token_request(base: str, source: str, username: str, password: str) -> int:
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10, source_address=(source, 0))
    try:
        body = json.dumps({"username": username, "password": password})
        connection.request("POST", "/api/v1/auth/token/", body, {"Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_an_address_paused_for_its_failed_sign_ins_pauses_no_other_address(tmp_path: Path):
    server, base = start_image_web_role(tmp_path)
    try:
        environment = os.environ | {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        }
        for username in ("ada", "grace"):
            manage(
                "createsuperuser",
                "--noinput",
                "--username",
                username,
                "--email",
                f"{username}@example.org",
                environment=environment,
            )
        # Five wrong passwords, for as many accounts, from one address: the fifth pauses that address.
        statuses = [token_request(base, GUESSER, f"guess-{number}", "wrong password") for number in range(5)]
        assert statuses == [400, 400, 400, 400, 429]
        assert token_request(base, GUESSER, "ada", PASSWORD) == 429

        # Someone else, elsewhere, signs in as before.
        assert token_request(base, SOMEONE_ELSE, "grace", PASSWORD) == 200
    finally:
        stop(server)
