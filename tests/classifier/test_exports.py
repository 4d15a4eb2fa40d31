"""Exports: a user's faces, predictions and reviews as CSV and JSON, the reviewed crops as a ZIP; staff's whole site."""

import csv
import io
import json
import zipfile

from PIL import Image
from rest_framework.test import APIClient

from classifier import services
from classifier.models import Face
from ml.labels import EXPRESSIONS
from tests.classifier.corpus import encode, group_photo, make_capture, signed_in


def content(response) -> bytes:
    return b"".join(response.streaming_content)


def reviewed_group(owner) -> list:
    photo, _ = group_photo()
    faces = list(make_capture(owner, encode(photo, "PNG"), name="group.png").faces.all())
    services.face_review(face=faces[0], reviewer=owner, true_label=faces[0].predicted_label)
    wrong = "fear" if faces[1].predicted_label != "fear" else "sad"
    services.face_review(face=faces[1], reviewer=owner, true_label=wrong)
    return faces


def test_csv_and_json_hold_my_faces_predictions_and_reviews_only(user, other_user, model_version):
    faces = reviewed_group(user)
    make_capture(other_user)

    rows = list(csv.DictReader(io.StringIO(content(signed_in(user).get("/captures/export.csv")).decode())))
    records = json.loads(content(signed_in(user).get("/captures/export.json")))

    assert [int(row["face_id"]) for row in rows] == [face.pk for face in faces]
    assert [record["face_id"] for record in records] == [face.pk for face in faces]
    first, second = records[0], records[1]
    assert first["is_correct"] is True and first["true_label"] == faces[0].predicted_label
    assert second["is_correct"] is False and second["reviewed_by"] == "ada" and records[2]["true_label"] is None
    assert abs(sum(first[f"probability_{label}"] for label in EXPRESSIONS) - 1) < 1e-4
    assert rows[1]["true_label"] == records[1]["true_label"] and rows[0]["owner"] == "ada"


def test_the_zip_holds_the_reviewed_crops_in_a_folder_per_expression(user, model_version):
    faces = reviewed_group(user)
    right, wrong = (Face.objects.get(pk=face.pk) for face in faces[:2])

    response = signed_in(user).get("/captures/reviewed-faces.zip")

    assert response["Content-Disposition"] == 'attachment; filename="reviewed-faces.zip"'
    archive = zipfile.ZipFile(io.BytesIO(content(response)))
    assert sorted(archive.namelist()) == sorted(
        [f"{right.true_label}/face-{right.pk}.png", f"{wrong.true_label}/face-{wrong.pk}.png"]
    )
    crop = Image.open(io.BytesIO(archive.read(archive.namelist()[0])))
    assert crop.size == (48, 48) and crop.mode == "L"


def test_staff_export_the_whole_site_and_nobody_else_does(user, other_user, staff_user, model_version):
    mine = reviewed_group(user)
    theirs = make_capture(other_user).faces.get()

    site = json.loads(content(signed_in(staff_user).get("/captures/export.json?scope=site")))
    assert {record["face_id"] for record in site} == {face.pk for face in mine} | {theirs.pk}
    assert signed_in(user).get("/captures/export.json?scope=site").status_code == 403


def test_an_api_token_exports_too_and_a_visitor_cannot(user, model_version):
    reviewed_group(user)
    api = APIClient()
    api.force_authenticate(user)

    assert len(json.loads(content(api.get("/captures/export.json")))) == 5
    assert APIClient().get("/captures/export.csv").status_code == 401


def test_a_reviewed_face_with_no_crop_and_no_image_is_named_not_lost(user, model_version, media_dir):
    faces = reviewed_group(user)
    Face.objects.filter(pk=faces[0].pk).update(crop=None)  # stored before crops were kept
    for path in media_dir.rglob("*.jpg"):
        path.unlink()  # and its image is gone

    archive = zipfile.ZipFile(io.BytesIO(content(signed_in(user).get("/captures/reviewed-faces.zip"))))

    assert f"face {faces[0].pk}" in archive.read("MISSING.txt").decode()
    assert len([name for name in archive.namelist() if name.endswith(".png")]) == 1


def test_staff_who_may_not_view_captures_cannot_export_the_site(user, model_version, django_user_model):
    reviewed_group(user)
    clerk = django_user_model.objects.create_user("clerk", password="unused password 3", is_staff=True)

    assert signed_in(clerk).get("/captures/export.json?scope=site").status_code == 403


def test_a_username_a_spreadsheet_would_run_is_quoted_in_the_csv(model_version, django_user_model):
    sneaky = django_user_model.objects.create_user("+cmd", password="unused password 4")  # a valid username
    reviewed_group(sneaky)

    rows = list(csv.DictReader(io.StringIO(content(signed_in(sneaky).get("/captures/export.csv")).decode())))

    assert rows[0]["owner"] == "'+cmd" and rows[0]["reviewed_by"] == "'+cmd"
