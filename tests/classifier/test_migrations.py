"""Data migrations, run on rows shaped as before them."""

import importlib

from django.apps import apps

from classifier.models import Face
from tests.classifier.corpus import encode, group_photo, make_capture

face_number = importlib.import_module("classifier.migrations.0003_face_number")


def test_faces_stored_before_numbering_are_numbered_in_reading_order(user, model_version):
    photo, _ = group_photo()
    faces = list(make_capture(user, encode(photo, "PNG"), name="group.png").faces.order_by("id"))
    # Boxes handed out in reverse, so the faces' ids run against their reading order.
    boxes = [face.box for face in faces]
    for face, box in zip(faces, reversed(boxes), strict=True):
        Face.objects.filter(pk=face.pk).update(
            box_x=box[0], box_y=box[1], box_width=box[2], box_height=box[3], number=1
        )

    face_number.number_faces_in_reading_order(apps, schema_editor=None)

    assert list(Face.objects.order_by("id").values_list("number", flat=True)) == [5, 4, 3, 2, 1]
