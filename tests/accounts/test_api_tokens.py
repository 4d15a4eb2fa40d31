"""API tokens: stored as hashes only, shown in full once, seen, renewed and revoked on the account page,
renewed when the password changes, never listed in the admin; the API contract stays {"token": ...}."""

import hashlib
import importlib
import re
from io import StringIO
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.classifier.corpus import signed_in
from tests.conftest import PASSWORD

TOKEN = "/api/v1/auth/token/"
ACCOUNT = "/accounts/"
hash_plain_tokens = importlib.import_module("accounts.migrations.0002_hash_plain_api_tokens").hash_plain_tokens


def fetch_token(username: str = "ada", password: str = PASSWORD) -> str:
    response = APIClient().post(TOKEN, {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()["token"]


def works(key: str) -> bool:
    """Whether the API takes this token."""
    status = APIClient(headers={"Authorization": f"Token {key}"}).get("/api/v1/models/").status_code
    assert status in (200, 401)
    return status == 200


def shown_token(page) -> str | None:
    """The full token a page shows (in its one element made for it), if any."""
    found = re.search(r'id="new-token"[^>]*>([0-9a-f]+)<', page.content.decode())
    return found.group(1) if found else None


def test_a_fetched_token_works_and_only_its_hash_is_stored(user):
    key = fetch_token()

    assert works(key)
    [row] = AuthToken.objects.filter(user=user).values()
    assert row["digest"] == hashlib.sha512(key.encode()).hexdigest()
    assert key not in {str(value) for value in row.values()}


def test_each_fetch_makes_a_token_of_its_own_and_the_oldest_go_past_ten(user):
    keys = [fetch_token() for _ in range(11)]

    assert not works(keys[0])
    assert all(works(key) for key in keys[1:])


def test_the_account_page_lists_tokens_by_their_first_characters_only(user):
    key = fetch_token()

    page = signed_in(user).get(ACCOUNT)

    text = page.content.decode()
    assert page.status_code == 200 and key[:8] in text and key not in text and shown_token(page) is None


def test_a_token_made_on_the_account_page_is_shown_once(user):
    client = signed_in(user)

    made = client.post(f"{ACCOUNT}tokens/")
    key = shown_token(made)

    assert made.status_code == 200 and key and works(key)
    assert "no-store" in made["Cache-Control"]
    assert key not in client.get(ACCOUNT).content.decode()


def test_renewing_a_token_on_the_account_page_replaces_it(user):
    old = fetch_token()
    [token] = AuthToken.objects.filter(user=user)

    renewed = signed_in(user).post(f"{ACCOUNT}tokens/{token.digest}/renew/")
    new = shown_token(renewed)

    assert renewed.status_code == 200 and new and new != old
    assert works(new) and not works(old)


def test_revoking_a_token_on_the_account_page_ends_it(user):
    kept, revoked = fetch_token(), fetch_token()
    digest = hashlib.sha512(revoked.encode()).hexdigest()

    response = signed_in(user).post(f"{ACCOUNT}tokens/{digest}/revoke/")

    assert response.status_code == 302 and response["Location"] == ACCOUNT
    assert works(kept) and not works(revoked)


def test_another_users_token_is_404(user, other_user):
    theirs = fetch_token("grace")
    digest = hashlib.sha512(theirs.encode()).hexdigest()
    client = signed_in(user)

    assert client.post(f"{ACCOUNT}tokens/{digest}/revoke/").status_code == 404
    assert client.post(f"{ACCOUNT}tokens/{digest}/renew/").status_code == 404
    assert works(theirs)


def test_a_password_change_renews_the_tokens(user):
    old = fetch_token()
    new_password = "a different horse 42"

    done = signed_in(user).post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    new = shown_token(done)

    assert done.status_code == 200 and "Password changed" in done.content.decode()
    assert not works(old) and new and works(new)
    assert AuthToken.objects.filter(user=user).count() == 1


def test_a_password_change_without_tokens_makes_none(user):
    new_password = "a different horse 42"
    response = signed_in(user).post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )

    assert response.status_code == 302 and not AuthToken.objects.exists()


def test_a_password_set_in_the_admin_revokes_the_tokens(user, staff_user):
    key = fetch_token()
    new_password = "a different horse 42"

    response = signed_in(staff_user).post(
        f"/admin/accounts/user/{user.pk}/password/", {"password1": new_password, "password2": new_password}
    )

    assert response.status_code == 302
    assert not works(key) and not AuthToken.objects.exists()


def test_a_password_set_with_manage_py_changepassword_revokes_the_tokens(user, monkeypatch):
    key = fetch_token()
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "a different horse 42")

    call_command("changepassword", "ada", stdout=StringIO())

    user.refresh_from_db()
    assert user.check_password("a different horse 42")
    assert not works(key) and not AuthToken.objects.exists()


def test_the_admin_lists_no_tokens(user, staff_user):
    fetch_token()
    client = signed_in(staff_user)

    assert client.get("/admin/knox/authtoken/").status_code == 404
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404
    index = client.get("/admin/").content.decode()
    assert "/admin/knox/" not in index and "/admin/authtoken/" not in index


def test_the_navigation_leads_to_the_account_page(user):
    assert f'href="{ACCOUNT}"' in signed_in(user).get("/captures/").content.decode()


def test_plain_tokens_from_before_are_hashed_and_keep_working(user):
    """Rows as rest_framework.authtoken stored them, in its table, before this change."""
    plain = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TABLE "authtoken_token" ("key" varchar(40) NOT NULL PRIMARY KEY, '
            '"created" timestamp with time zone NOT NULL, "user_id" bigint NOT NULL UNIQUE)'
        )
        cursor.execute('INSERT INTO "authtoken_token" VALUES (%s, %s, %s)', [plain, timezone.now(), user.pk])

    hash_plain_tokens(apps, SimpleNamespace(connection=connection))

    assert works(plain)
    with connection.cursor() as cursor:
        cursor.execute('SELECT COUNT(*) FROM "authtoken_token"')
        assert cursor.fetchone() == (0,)
    assert plain not in str(list(AuthToken.objects.values()))


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token zz-not-hex"])
def test_a_malformed_token_header_is_401_json(db, header):
    response = APIClient(headers={"Authorization": header}).get("/api/v1/models/")

    assert response.status_code == 401 and response.json()["detail"]


def test_signed_out_the_account_page_asks_to_sign_in(db):
    response = Client().get(ACCOUNT)

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
