"""Brute force: wrong passwords are limited per account and per address, on the sign-in page, the admin's
and the API's token door alike; the right password is refused during the cool-down and works after it."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

SIGN_IN = "/accounts/login/"
TOKEN = "/api/v1/auth/token/"
PAUSED = "Too many failed sign-ins"


@pytest.fixture(autouse=True)
def _short_cool_down(settings) -> timedelta:
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    return settings.AXES_COOLOFF_TIME


def sign_in(username: str, password: str, address: str = "192.0.2.1", **headers):
    return Client(REMOTE_ADDR=address, headers=headers).post(SIGN_IN, {"username": username, "password": password})


def token(username: str, password: str, address: str = "192.0.2.1"):
    return APIClient(REMOTE_ADDR=address).post(TOKEN, {"username": username, "password": password})


def test_wrong_passwords_pause_the_sign_in_page_then_the_right_one_works_after_the_cool_down(user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert "correct username and password" in sign_in("ada", "not my password").content.decode()

    last_wrong = sign_in("ada", "not my password")
    right_during = sign_in("ada", PASSWORD)
    time.sleep(settings.AXES_COOLOFF_TIME.total_seconds())
    right_after = sign_in("ada", PASSWORD)

    assert last_wrong.status_code == 429 and right_during.status_code == 429
    page = right_during.content.decode()
    assert PAUSED in page and 'class="form-errors"' in page and "<form" in page  # a form message, on the page
    assert right_during["Retry-After"] == "2"
    assert right_after.status_code == 302


def test_the_account_is_paused_whatever_the_address(user, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        sign_in("ada", "not my password", address=f"198.51.100.{number}")

    assert sign_in("ada", PASSWORD, address="203.0.113.7").status_code == 429
    assert sign_in("grace", "any", address="203.0.113.7").status_code == 200  # other accounts are not paused


def test_the_address_is_paused_whatever_the_account(user, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        sign_in(f"guess{number}", "not my password")

    assert sign_in("ada", PASSWORD).status_code == 429
    assert sign_in("ada", PASSWORD, address="203.0.113.7").status_code == 302


def test_a_client_cannot_choose_its_address_by_default(user, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        sign_in(f"guess{number}", "not my password", x_forwarded_for=f"198.51.100.{number}")

    assert sign_in("ada", PASSWORD, x_forwarded_for="203.0.113.7").status_code == 429


def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(user, settings):
    settings.EMOTIONSITE_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for number in range(settings.AXES_FAILURE_LIMIT):
        # What the client claims comes first; the proxy appends the address it saw.
        sign_in(f"guess{number}", "wrong", address=proxy, x_forwarded_for=f"198.51.100.{number}, 203.0.113.66")

    assert sign_in("ada", PASSWORD, address=proxy, x_forwarded_for="203.0.113.66").status_code == 429
    assert sign_in("ada", PASSWORD, address=proxy, x_forwarded_for="203.0.113.66, 203.0.113.7").status_code == 302


def test_wrong_passwords_pause_the_token_door_with_a_json_429(user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert token("ada", "not my password").status_code == 400

    last_wrong = token("ada", "not my password")
    right_during = token("ada", PASSWORD)
    time.sleep(settings.AXES_COOLOFF_TIME.total_seconds())
    right_after = token("ada", PASSWORD)

    assert last_wrong.status_code == 429 and right_during.status_code == 429
    assert PAUSED in right_during.json()["detail"] and right_during["Retry-After"] == "2"
    assert right_after.status_code == 200 and right_after.json()["token"]


def test_the_page_and_the_token_door_share_one_count(user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        token("ada", "not my password", address="198.51.100.1")

    assert sign_in("ada", PASSWORD, address="203.0.113.7").status_code == 429


def test_the_admin_sign_in_is_paused_too(staff_user, settings):
    client = Client(REMOTE_ADDR="192.0.2.1")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "admin", "password": "not my password"})

    response = client.post("/admin/login/", {"username": "admin", "password": PASSWORD})

    assert response.status_code == 429 and PAUSED in response.content.decode()
