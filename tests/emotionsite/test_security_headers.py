"""Headers every page carries: the Content-Security-Policy always, HSTS over HTTPS when the site is set up for it."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.test import Client

PROJECT = Path(__file__).resolve().parents[2]


def test_every_page_forbids_inline_script_and_other_sites(db):
    policy = Client().get("/accounts/login/")["Content-Security-Policy"]

    directives = dict(directive.strip().split(" ", 1) for directive in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"


def served_headers(environment: dict[str, str], forwarded_proto: str | None) -> dict[str, str]:
    """The headers of the sign-in page, from the settings as a fresh process reads them from this environment."""
    code = (
        "import json, django; django.setup(); from django.test import Client; "
        f"headers = {{'X-Forwarded-Proto': {forwarded_proto!r}}} if {forwarded_proto!r} else {{}}; "
        "print(json.dumps(dict(Client().get('/accounts/login/', headers=headers).headers)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "emotionsite.settings", "ALLOWED_HOSTS": "testserver"}
        | environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_behind_https_the_site_asks_browsers_to_keep_to_https():
    headers = served_headers({"EMOTIONSITE_HTTPS": "true"}, forwarded_proto="https")

    assert headers["Strict-Transport-Security"] == "max-age=31536000"


def test_without_https_there_is_no_hsts():
    assert "Strict-Transport-Security" not in served_headers({"EMOTIONSITE_HTTPS": "false"}, forwarded_proto="https")
    assert "Strict-Transport-Security" not in served_headers({"EMOTIONSITE_HTTPS": "true"}, forwarded_proto=None)
