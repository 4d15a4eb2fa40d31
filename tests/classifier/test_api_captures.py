import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image
from rest_framework.test import APIClient

from classifier.models import Capture
from ml.labels import EXPRESSIONS
from tests.classifier.corpus import (
    REFUSED_UPLOADS,
    encode,
    face_photo_bytes,
    group_photo,
    make_capture,
    no_face_photo,
    nothing_stored,
    stored_files,
    tight_crop_bytes,
    upload,
)

CAPTURES = "/api/v1/captures/"


@pytest.fixture
def api(user) -> APIClient:
    client = APIClient()
    token = client.post("/api/v1/auth/token/", {"username": "ada", "password": "correct horse battery staple"})
    assert token.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    return client


def post_image(api: APIClient, name: str, content: bytes, **extra):
    return api.post(CAPTURES, {"image": upload(name, content), **extra}, format="multipart")


def test_token_with_a_wrong_password_is_refused(user):
    response = APIClient().post("/api/v1/auth/token/", {"username": "ada", "password": "wrong"})
    assert response.status_code == 400
    assert "Unable to log in" in str(response.json())


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", CAPTURES),
        ("post", CAPTURES),
        ("get", "/api/v1/accuracy/"),
        ("get", "/api/v1/models/"),
        ("patch", "/api/v1/faces/1/"),
    ],
)
def test_without_credentials_is_401_json(db, method, path):
    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "credentials were not provided" in response.json()["detail"]


def test_create_capture_returns_the_contract(api, model_version, media_dir):
    response = post_image(api, "me.jpg", face_photo_bytes())
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= {"id", "created_at", "source", "image_url", "width", "height", "model_version", "faces"}
    assert body["source"] == "upload" and body["model_version"] == "tiny-1" and body["whole_image"] is False
    assert (body["width"], body["height"]) == (320, 320)
    assert body["image_url"] == f"http://testserver/captures/{body['id']}/image.jpg"
    [face] = body["faces"]
    assert set(face) == {
        "id",
        "capture",
        "number",
        "image_url",
        "box",
        "predicted_label",
        "confidence",
        "probabilities",
        "true_label",
        "is_correct",
    }
    assert len(face["box"]) == 4
    assert list(face["probabilities"]) == list(EXPRESSIONS)
    assert face["predicted_label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert face["true_label"] is None and face["is_correct"] is None
    assert api.get(body["image_url"]).status_code == 200
    assert len(stored_files(media_dir)) == 2


def test_webcam_source_and_whole_image_are_reported(api, model_version):
    body = post_image(api, "frame.png", tight_crop_bytes(), source="webcam").json()
    assert body["source"] == "webcam"
    assert body["whole_image"] is True
    assert body["faces"][0]["box"] == [0, 0, 48, 48]


def test_no_face_capture_has_an_empty_face_list(api, model_version):
    body = post_image(api, "wall.png", encode(no_face_photo(), "PNG")).json()
    assert body["faces"] == [] and body["whole_image"] is False
    assert Capture.objects.filter(pk=body["id"]).exists()


def test_unknown_source_is_400(api, model_version, media_dir):
    response = post_image(api, "me.jpg", face_photo_bytes(), source="scanner")
    assert response.status_code == 400
    assert "source" in response.json()
    assert nothing_stored(media_dir)


def test_missing_image_is_400(api, model_version, media_dir):
    response = api.post(CAPTURES, {}, format="multipart")
    assert response.status_code == 400
    assert response.json()["image"] == ["No file was submitted."]


@pytest.mark.parametrize("name", REFUSED_UPLOADS)
def test_bad_images_are_refused_with_json_and_leave_nothing(api, model_version, media_dir, name):
    make_content, status, message = REFUSED_UPLOADS[name]
    response = post_image(api, name, make_content())
    assert response.status_code == status
    body = response.json()
    text = body["detail"] if status == 413 else body["image"][0]
    assert message in text
    assert nothing_stored(media_dir)


def test_too_large_upload_is_413_before_it_is_read(api, model_version, media_dir):
    response = post_image(api, "huge.jpg", b"\xff\xd8" + b"\0" * (11 * 1024 * 1024))
    assert response.status_code == 413
    assert "limit of 10 MB" in response.json()["detail"]
    assert nothing_stored(media_dir)


def test_an_unreadable_content_length_is_not_a_server_error(api, model_version, media_dir):
    # Django reads such a body as empty; the early size check must not stumble on the header either.
    response = api.post(CAPTURES, {"image": upload("me.jpg", face_photo_bytes())}, CONTENT_LENGTH="abc")
    assert response.status_code == 400
    assert response.json()["image"] == ["No file was submitted."]
    assert nothing_stored(media_dir)


def test_without_a_model_version_the_api_says_503(api, settings, tmp_path, media_dir):
    settings.EMOTIONSITE_MODEL_DIR = tmp_path / "empty"
    response = post_image(api, "me.jpg", face_photo_bytes())
    assert response.status_code == 503
    assert "not available" in response.json()["detail"]
    assert nothing_stored(media_dir)


def test_list_is_paginated_newest_first_and_only_mine(api, user, other_user, model_version):
    mine = [make_capture(user, encode(no_face_photo(), "PNG")) for _ in range(3)]
    make_capture(other_user, encode(no_face_photo(), "PNG"))
    body = api.get(CAPTURES).json()
    assert body["count"] == 3
    assert [capture["id"] for capture in body["results"]] == [capture.pk for capture in reversed(mine)]
    assert set(body) == {"count", "next", "previous", "results"}


def test_list_filters_by_label_and_review_state(api, user, model_version):
    from classifier import services

    first, second, third = (make_capture(user) for _ in range(3))
    label = first.faces.get().predicted_label
    other = next(expression for expression in EXPRESSIONS if expression != label)
    services.face_review(face=first.faces.get(), reviewer=user, true_label=label)
    services.face_review(face=second.faces.get(), reviewer=user, true_label=other)

    def ids(query: str) -> set[int]:
        response = api.get(CAPTURES + query)
        assert response.status_code == 200, response.json()
        return {capture["id"] for capture in response.json()["results"]}

    assert ids(f"?label={label}") == {first.pk, second.pk, third.pk}  # the same photo, the same prediction
    assert ids(f"?label={other}") == set()
    assert ids("?reviewed=true") == {first.pk, second.pk}
    assert ids("?reviewed=false") == {third.pk}
    assert ids("?correct=true") == {first.pk}
    assert ids("?correct=false") == {second.pk}
    assert ids(f"?label={label}&correct=false") == {second.pk}


def test_bad_filter_is_400(api, model_version):
    response = api.get(CAPTURES + "?label=bored")
    assert response.status_code == 400
    assert "label" in response.json()


def test_get_and_delete_my_capture_removes_its_files(api, user, model_version, media_dir, run_on_commit):
    capture = make_capture(user)
    assert api.get(f"{CAPTURES}{capture.pk}/").json()["id"] == capture.pk
    with run_on_commit():
        assert api.delete(f"{CAPTURES}{capture.pk}/").status_code == 204
    assert nothing_stored(media_dir)
    assert api.get(f"{CAPTURES}{capture.pk}/").status_code == 404


def test_another_users_capture_is_404_and_untouched(api, other_user, model_version, media_dir):
    theirs = make_capture(other_user)
    for method in ("get", "delete"):
        response = getattr(api, method)(f"{CAPTURES}{theirs.pk}/")
        assert response.status_code == 404
        assert response.json() == {"detail": "No Capture matches the given query."}
    assert api.get(f"/captures/{theirs.pk}/image.jpg").status_code == 404
    assert Capture.objects.filter(pk=theirs.pk).exists()
    assert len(stored_files(media_dir)) == 2


def test_session_authentication_works_too(user_client, model_version):
    response = user_client.get(CAPTURES)
    assert response.status_code == 200


def test_too_many_parameters_is_a_json_400(api, settings):
    query = "&".join(f"field{number}=1" for number in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = api.get(f"{CAPTURES}?{query}")
    assert response.status_code == 400
    assert "parameters" in response.json()["detail"]


def test_unknown_api_path_is_json_404(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_faces_are_numbered_in_reading_order(api, model_version):
    photo, centres = group_photo()

    body = post_image(api, "group.png", encode(photo, "PNG")).json()

    assert [face["number"] for face in body["faces"]] == [1, 2, 3, 4, 5]
    for face, (centre_x, centre_y) in zip(body["faces"], centres, strict=True):
        x, y, width, height = face["box"]
        assert x < centre_x < x + width and y < centre_y < y + height
    assert api.get(f"{CAPTURES}{body['id']}/").json()["faces"] == body["faces"]


def test_predict_reads_the_faces_and_stores_nothing(api, model_version, media_dir):
    photo, centres = group_photo()

    response = post_image_to(api, "/api/v1/predict/", "group.png", encode(photo, "PNG"))

    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == "tiny-1" and (body["width"], body["height"]) == photo.size
    assert [face["number"] for face in body["faces"]] == [1, 2, 3, 4, 5]
    for face, (centre_x, centre_y) in zip(body["faces"], centres, strict=True):
        x, y, width, height = face["box"]
        assert x < centre_x < x + width and y < centre_y < y + height
        assert list(face["probabilities"]) == list(EXPRESSIONS)
        assert face["predicted_label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert nothing_stored(media_dir)


@pytest.mark.parametrize(("name", "content", "status"), [("empty.jpg", b"", 400), ("notes.txt", b"not an image", 400)])
def test_predict_refuses_what_captures_refuse(api, model_version, media_dir, name, content, status):
    response = post_image_to(api, "/api/v1/predict/", name, content)

    assert response.status_code == status and "image" in response.json()
    assert nothing_stored(media_dir)


def test_predict_needs_credentials(db):
    assert APIClient().post("/api/v1/predict/").status_code == 401


def post_image_to(api: APIClient, path: str, name: str, content: bytes):
    return api.post(path, {"image": upload(name, content)}, format="multipart")


def test_create_capture_answers_from_the_rows_it_wrote_without_reading_the_capture_back(api, model_version, media_dir):
    with CaptureQueriesContext(connection) as queries:
        response = post_image(api, "group.jpg", encode(group_photo()[0], "JPEG"))
    assert response.status_code == 201
    assert len(response.json()["faces"]) == Capture.objects.get().faces.count() > 1
    statements = [query["sql"] for query in queries.captured_queries]
    written = next(index for index, sql in enumerate(statements) if sql.startswith('INSERT INTO "classifier_capture"'))
    read_back = [sql for sql in statements[written:] if sql.startswith("SELECT") and 'FROM "classifier_capture"' in sql]
    assert read_back == []


@pytest.mark.parametrize(
    "size, stored_width",
    [
        ((4032, 2160), 2016),  # a phone photo's width: decoded at half size, still 1920 px or more
        ((4033, 2161), 2017),  # odd sides too (libjpeg rounds the halves up)
        ((3840, 2057), 1920),  # exactly 1920 at half size
        ((3839, 2056), 1920),  # 1919.5, rounded up
        ((3838, 2056), 3838),  # half of it would be 1919 px: decoded whole
    ],
)
def test_a_large_jpeg_is_decoded_at_the_size_face_finding_needs(api, model_version, media_dir, size, stored_width):
    photo, centres = group_photo()

    response = post_image(api, "phone.jpg", encode(photo.resize(size, Image.Resampling.BICUBIC), "JPEG", quality=90))

    assert response.status_code == 201
    body = response.json()
    assert body["width"] == stored_width
    factor = stored_width / photo.width
    for face, (x, y) in zip(body["faces"], centres, strict=True):  # every face, in reading order
        left, top, width, height = face["box"]
        assert left <= x * factor <= left + width and top <= y * factor <= top + height


def test_a_jpeg_with_odd_sides_is_decoded_small_enough_to_fit_the_memory_limit(api, settings, model_version, media_dir):
    settings.EMOTIONSITE_MAX_DECODED_BYTES = 8 * 2**20  # 4001x3001 needs a quarter: 1001x751, 3 MB; a half is 12
    photo, _ = group_photo()

    response = post_image(api, "odd.jpg", encode(photo.resize((4001, 3001)), "JPEG", quality=90))

    assert response.status_code == 201, response.json()
    assert (response.json()["width"], response.json()["height"]) == (1001, 751)
