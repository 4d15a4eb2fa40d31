"""Files and rows stay together: an unwritable media folder is a clear 503 that loses nothing."""

import os
import threading
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from classifier import services
from classifier.models import Capture
from tests.classifier.corpus import face_photo_bytes, make_capture, nothing_stored, stored_files, upload
from tests.conftest import make_user, unwritable

CAPTURES = "/api/v1/captures/"


def test_an_upload_into_an_unwritable_media_folder_is_a_clear_503(api, user_client, model_version, media_dir):
    with unwritable(media_dir):
        api_response = api.post(CAPTURES, {"image": upload("photo.jpg", face_photo_bytes())}, format="multipart")
        page = user_client.post(reverse("classifier:capture_new"), {"image": upload("photo.jpg", face_photo_bytes())})

    assert api_response.status_code == 503
    assert api_response.json() == {
        "detail": "Photos cannot be stored right now (the server's media folder is not writable); "
        "nothing was stored. Try again later."
    }
    assert page.status_code == 503
    assert "Photos cannot be stored right now" in page.content.decode()
    assert nothing_stored(media_dir)


def test_a_delete_whose_files_cannot_be_removed_keeps_the_capture_and_says_503(
    api, user, user_client, model_version, media_dir, run_on_commit
):
    first, second = make_capture(user), make_capture(user)
    files = sorted(stored_files(media_dir))

    with unwritable(media_dir / "captures" / str(user.pk)), run_on_commit():
        api_response = api.delete(f"{CAPTURES}{first.pk}/")
        page = user_client.post(reverse("classifier:capture_delete", args=[second.pk]))

    assert api_response.status_code == 503
    assert api_response.json() == {
        "detail": "The capture cannot be deleted right now (the server's media folder is not writable); "
        "it is kept as it was. Try again later."
    }
    assert page.status_code == 503 and "The capture cannot be deleted right now" in page.content.decode()
    assert set(Capture.objects.values_list("pk", flat=True)) == {first.pk, second.pk}
    assert sorted(stored_files(media_dir)) == files
    # Once the folder is writable again, the same delete works.
    with run_on_commit():
        assert api.delete(f"{CAPTURES}{first.pk}/").status_code == 204
    assert not Capture.objects.filter(pk=first.pk).exists() and len(stored_files(media_dir)) == 2


@pytest.mark.django_db(transaction=True)  # two threads, each with its own connection: real commits
def test_an_upload_that_commits_while_its_account_is_deleted_leaves_no_file(settings, tiny_models_dir, media_dir):
    """A real upload, held inside its transaction until the deletion has begun, then let go to commit."""
    settings.EMOTIONSITE_MODEL_DIR = tiny_models_dir
    services.model_versions_register()
    owner = make_user("ada")
    make_capture(owner)
    inserted, go_on = threading.Event(), threading.Event()

    def hold_before_commit(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('INSERT INTO "classifier_face"'):
            inserted.set()
            go_on.wait(30)
        return result

    def upload_in_flight() -> None:
        try:
            with connection.execute_wrapper(hold_before_commit):
                make_capture(owner)
        except IntegrityError:
            pass  # PostgreSQL checks the owner at the commit, which comes after the deletion's: refused
        finally:
            connection.close()

    def delete_the_account() -> None:
        try:
            services.user_delete(user=User.objects.get(pk=owner.pk))
        finally:
            connection.close()

    uploading = threading.Thread(target=upload_in_flight)
    uploading.start()
    assert inserted.wait(30), "the upload never reached its commit"
    deleting = threading.Thread(target=delete_the_account)
    deleting.start()
    time.sleep(0.5)  # the deletion has begun, and waits for the upload's write lock
    go_on.set()
    uploading.join(30)
    deleting.join(30)

    assert not User.objects.filter(pk=owner.pk).exists() and not Capture.objects.exists()
    assert stored_files(media_dir) == [] and not (media_dir / "captures" / str(owner.pk)).exists()


def orphan(media_dir: Path, name: str, *, age: timedelta) -> Path:
    """A file no row points to, written `age` ago (as a killed upload leaves one)."""
    path = media_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(face_photo_bytes())
    when = (timezone.now() - age).timestamp()
    os.utime(path, (when, when))
    return path


def remove_orphan_files(*arguments: str) -> str:
    out = StringIO()
    call_command("remove_orphan_files", *arguments, stdout=out)
    return out.getvalue()


def test_orphan_files_are_found_in_a_dry_run_and_removed_with_delete(user, other_user, model_version, media_dir):
    kept = [make_capture(user), make_capture(other_user)]
    stored = sorted(stored_files(media_dir))
    left_by_a_kill = orphan(media_dir, f"captures/{user.pk}/0123abcd.jpg", age=timedelta(hours=3))
    of_a_deleted_account = orphan(media_dir, "captures/999/4567cdef-thumbnail.jpg", age=timedelta(days=2))
    on_its_way = orphan(media_dir, f"captures/{user.pk}/89abef01.jpg", age=timedelta(seconds=5))

    report = remove_orphan_files()
    assert f"captures/{user.pk}/0123abcd.jpg" in report and "captures/999/4567cdef-thumbnail.jpg" in report
    assert "89abef01" not in report
    assert "2 orphan files" in report and "1 file newer than 1 h was left" in report
    assert "Dry run: nothing was removed; run with --delete to remove them." in report
    assert left_by_a_kill.exists() and of_a_deleted_account.exists()

    report = remove_orphan_files("--delete")
    assert "Removed 2 orphan files" in report
    assert not left_by_a_kill.exists() and not of_a_deleted_account.exists() and on_its_way.exists()
    assert sorted(stored_files(media_dir)) == sorted([*stored, on_its_way])
    for capture in kept:
        assert capture.image.storage.exists(capture.image.name) and capture.thumbnail.storage.exists(
            capture.thumbnail.name
        )

    # A shorter minimum age takes the recent one too; the captures' files are never touched.
    assert "Removed 1 orphan file " in remove_orphan_files("--delete", "--min-age", "1")
    assert sorted(stored_files(media_dir)) == stored


def test_no_orphan_files_says_so(db, media_dir):
    assert "No orphan files" in remove_orphan_files()
