"""Files and rows stay together: an unwritable media folder is a clear 503 that loses nothing."""

from django.urls import reverse

from classifier.models import Capture
from tests.classifier.corpus import face_photo_bytes, make_capture, nothing_stored, stored_files, upload
from tests.conftest import unwritable

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
