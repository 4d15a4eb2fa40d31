import ast
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from accounts.models import User
from classifier.models import Capture
from tests.classifier.corpus import make_capture, nothing_stored, stored_files
from tests.conftest import unwritable

PASSWORD = "correct horse battery staple"


def test_sign_up_signs_the_new_person_in(db):
    client = Client()
    response = client.post(
        reverse("sign_up"),
        {"username": "lin", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert User.objects.filter(username="lin").exists()
    assert client.get(reverse("classifier:capture_list")).status_code == 200


def test_sign_up_with_mismatched_passwords_shows_the_error(db):
    response = Client().post(
        reverse("sign_up"), {"username": "lin", "password1": PASSWORD, "password2": PASSWORD + "x"}
    )
    assert response.status_code == 200
    assert "didn’t match" in response.content.decode()
    assert not User.objects.filter(username="lin").exists()


def test_sign_in_and_sign_out(user):
    client = Client()
    response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("classifier:capture_list")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("classifier:capture_list")).status_code == 302


def test_wrong_password_is_refused(user):
    response = Client().post(reverse("login"), {"username": "ada", "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_change_password(user, user_client):
    new_password = "a different horse 42"
    response = user_client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)


def test_capture_pages_need_a_signed_in_user(db):
    client = Client()
    for name in ("classifier:capture_webcam", "classifier:capture_list", "classifier:review_queue"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    response = client.post(reverse("classifier:capture_new"))  # the landing page takes no upload
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_deleting_a_user_in_the_admin_deletes_their_images(
    staff_user, user, other_user, model_version, media_dir, run_on_commit
):
    make_capture(user)
    theirs = make_capture(other_user)
    admin = Client()
    admin.force_login(staff_user)

    with run_on_commit():
        response = admin.post(reverse("admin:accounts_user_delete", args=[user.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert sorted(path.name for path in stored_files(media_dir)) == sorted(
        Path(name).name for name in (theirs.image.name, theirs.thumbnail.name)
    )

    with run_on_commit():
        response = admin.post(
            reverse("admin:accounts_user_changelist"),
            {"action": "delete_selected", "_selected_action": [other_user.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert nothing_stored(media_dir)


def test_accounts_imports_nothing_from_the_product() -> None:
    imported = set()
    for path in (Path(__file__).parents[2] / "accounts").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)

    assert "classifier" not in imported and "ml" not in imported


def test_a_visitor_sees_what_the_site_is_and_where_to_start(client) -> None:
    page = client.get("/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "finds every face" in text and 'href="/accounts/signup/"' in text and "img/screenshot" in text
    assert finders.find("img/screenshot.png") is not None


def test_an_account_whose_files_cannot_be_removed_is_kept_and_the_admin_says_why(
    staff_user, user, model_version, media_dir, run_on_commit
):
    capture = make_capture(user)
    admin = Client()
    admin.force_login(staff_user)

    with unwritable(media_dir / "captures" / str(user.pk)), run_on_commit():
        page = admin.post(reverse("admin:accounts_user_delete", args=[user.pk]), {"post": "yes"}, follow=True)
        action = admin.post(
            reverse("admin:accounts_user_changelist"),
            {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"},
            follow=True,
        )

    for response in (page, action):
        assert "The account cannot be deleted right now" in response.content.decode()
    assert User.objects.filter(pk=user.pk).exists() and Capture.objects.filter(pk=capture.pk).exists()
    assert len(stored_files(media_dir)) == 2


def sign_up(username: str, password: str = PASSWORD):
    return Client().post(reverse("sign_up"), {"username": username, "password1": password, "password2": password})


def test_a_password_under_twelve_characters_is_refused(db):
    response = sign_up("lin", "horse battr")  # 11 characters, not common, not all digits

    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
    assert not User.objects.filter(username="lin").exists()
    assert sign_up("lin", "horse battry").status_code == 302  # 12


@pytest.mark.parametrize(
    "lookalike, why",
    [
        ("ADA", "looks the same already exists"),  # another case
        ("Ada", "looks the same already exists"),
        ("\uff41\uff44\uff41", "looks the same already exists"),  # fullwidth "ａｄａ", NFKC makes it "ada"
        ("\u0430\u0441\u0435", "looks the same already exists"),  # Cyrillic "асе", one alphabet, reads "ace"
        ("\u0430da", "mixes alphabets"),  # Cyrillic а, then Latin "da"
    ],
)
def test_a_username_that_looks_like_an_existing_one_is_refused(db, lookalike, why):
    User.objects.create_user(username="ada", password=PASSWORD)
    User.objects.create_user(username="ace", password=PASSWORD)

    response = sign_up(lookalike)

    assert response.status_code == 200
    assert why in response.content.decode()
    assert User.objects.count() == 2


def test_names_in_one_other_alphabet_are_welcome(db):
    User.objects.create_user(username="ivan", password=PASSWORD)

    assert sign_up("\u0418\u0432\u0430\u043d").status_code == 302  # "Иван"
    assert sign_up("ivan_2").status_code == 302
