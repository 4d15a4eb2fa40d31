"""Idempotency-Key on POST /api/v1/captures/: a client that retries, not knowing whether it was stored, stores once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from classifier import services
from classifier.models import Capture, CaptureIdempotencyKey
from tests.classifier.corpus import api_for, encode, face_photo_bytes, stored_files, tight_crop_bytes, two_faces_photo
from tests.classifier.corpus import upload as uploaded_file
from tests.conftest import make_user

CAPTURES = "/api/v1/captures/"


def post(api, content: bytes, key: str | None, **fields):
    headers = {} if key is None else {"Idempotency-Key": key}
    return api.post(
        CAPTURES, {"image": uploaded_file("photo.jpg", content), **fields}, format="multipart", headers=headers
    )


def test_a_retry_with_the_same_key_returns_the_first_capture_and_stores_nothing_more(api, model_version, media_dir):
    first = post(api, face_photo_bytes(), "upload-7f3a")
    retry = post(api, face_photo_bytes(), "upload-7f3a")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert Capture.objects.count() == 1 and len(stored_files(media_dir)) == 2
    # Without a key, or with another, the same photo is a new capture.
    assert post(api, face_photo_bytes(), None).json()["id"] != first.json()["id"]
    assert post(api, face_photo_bytes(), "upload-7f3b").json()["id"] != first.json()["id"]
    assert Capture.objects.count() == 3


def test_another_request_under_a_used_key_is_refused_and_stores_nothing(api, model_version, media_dir):
    first = post(api, face_photo_bytes(), "upload-1")
    for content, fields in ((tight_crop_bytes(), {}), (face_photo_bytes(), {"source": "webcam"})):
        response = post(api, content, "upload-1", **fields)
        assert response.status_code == 422
        assert response.json() == {
            "detail": "This Idempotency-Key was used for another request (another image or source) in the last "
            "24 hours: send a new key with a new request."
        }
    assert list(Capture.objects.values_list("pk", flat=True)) == [first.json()["id"]]
    assert len(stored_files(media_dir)) == 2


def test_keys_are_per_user(api, other_user, model_version):
    mine = post(api, face_photo_bytes(), "upload-1").json()["id"]
    theirs = post(api_for(other_user), encode(two_faces_photo(), "PNG"), "upload-1")
    assert theirs.status_code == 201 and theirs.json()["id"] != mine
    assert Capture.objects.get(pk=theirs.json()["id"]).owner == other_user


def test_a_key_is_kept_for_24_hours(api, model_version):
    first = post(api, face_photo_bytes(), "upload-1").json()["id"]
    CaptureIdempotencyKey.objects.update(
        created_at=CaptureIdempotencyKey.objects.get().created_at - timedelta(hours=23)
    )
    assert post(api, face_photo_bytes(), "upload-1").json()["id"] == first

    CaptureIdempotencyKey.objects.update(created_at=CaptureIdempotencyKey.objects.get().created_at - timedelta(hours=2))
    later = post(api, tight_crop_bytes(), "upload-1")  # after 24 hours the key is free, for any request
    assert later.status_code == 201 and later.json()["id"] != first
    assert CaptureIdempotencyKey.objects.get().capture_id == later.json()["id"]


def test_a_key_that_is_no_header_value_is_400(api, model_version, media_dir):
    for key in ("", "x" * 256, "caf\u00e9"):
        response = post(api, face_photo_bytes(), key)
        assert response.status_code == 400
        assert response.json() == {"detail": "Idempotency-Key must be 1 to 255 visible ASCII characters."}
    assert not Capture.objects.exists()


def test_a_deleted_capture_frees_its_key(api, model_version, run_on_commit):
    first = post(api, face_photo_bytes(), "upload-1").json()["id"]
    with run_on_commit():
        assert api.delete(f"{CAPTURES}{first}/").status_code == 204
    assert post(api, face_photo_bytes(), "upload-1").json()["id"] != first


def test_the_schema_documents_the_header_and_its_lifetime(api):
    schema = api.get("/api/schema/?format=json").json()
    create = schema["paths"]["/api/v1/captures/"]["post"]
    header = next(parameter for parameter in create["parameters"] if parameter["name"] == "Idempotency-Key")
    assert header["in"] == "header" and not header.get("required", False)
    assert "24 hours" in header["description"] and "422" in create["responses"]


@pytest.mark.django_db(transaction=True)  # two requests in two threads, each with its own connection
def test_two_requests_at_once_with_one_key_store_one_capture(settings, tiny_models_dir, media_dir):
    settings.EMOTIONSITE_MODEL_DIR = tiny_models_dir
    services.model_versions_register()
    owner = make_user("ada")
    # Each request waits, once it has found no capture under the key, until the other has too.
    both_looked = threading.Barrier(2, timeout=30)
    responses = []

    def request() -> None:
        looked = False

        def look_then_wait(execute, sql, params, many, context):
            nonlocal looked
            result = execute(sql, params, many, context)
            if not looked and sql.startswith("SELECT") and '"classifier_captureidempotencykey"' in sql:
                looked = True
                both_looked.wait()
            return result

        try:
            with connection.execute_wrapper(look_then_wait):
                responses.append(post(api_for(owner), face_photo_bytes(), "upload-1"))
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert [response.status_code for response in responses] == [201, 201]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert Capture.objects.count() == 1 and CaptureIdempotencyKey.objects.count() == 1
    assert len(stored_files(media_dir)) == 2
