"""Data migrations, run on rows shaped as before them."""

import importlib

from django.apps import apps

from classifier.models import Face
from tests.classifier.corpus import encode, group_photo, make_capture

face_number = importlib.import_module("classifier.migrations.0003_face_number")


def test_faces_stored_before_numbering_are_numbered_in_reading_order(user, model_version):
    photo, _ = group_photo()
    capture = make_capture(user, encode(photo, "PNG"), name="group.png")
    in_reading_order = list(capture.faces.values_list("id", flat=True))
    Face.objects.update(number=1)  # as the column's default leaves every face stored before it

    face_number.number_faces_in_reading_order(apps, schema_editor=None)

    assert list(capture.faces.order_by("number").values_list("id", "number")) == [
        (face_id, number) for number, face_id in enumerate(in_reading_order, start=1)
    ]
