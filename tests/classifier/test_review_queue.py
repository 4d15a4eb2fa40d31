"""The review queue, page and API: least confident first, review, skip, undo; and who may review whose faces."""

import io

import numpy as np
import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from PIL import Image

from classifier.models import Face
from tests.classifier.corpus import api_for, encode, group_photo, make_capture, signed_in, tight_crop_bytes
from tests.classifier.video_corpus import face_video, read


@pytest.fixture
def reviewer(db, django_user_model):
    """A plain user in the reviewers group, which the migrations make."""
    person = django_user_model.objects.create_user("rosalind", password="unused password 1")
    person.groups.add(Group.objects.get(name="reviewers"))
    return person


def faces_of(owner, count_photos: int = 1) -> list[Face]:
    photo, _ = group_photo()  # five faces
    faces = []
    for _ in range(count_photos):
        faces += list(make_capture(owner, encode(photo, "PNG"), name="group.png").faces.all())
    return faces


def shown_face(client: Client) -> int | None:
    """The id of the face the queue page shows, from its review form."""
    page = client.get("/review/")
    assert page.status_code == 200
    return page.context["face"].pk if page.context["face"] else None


def test_the_queue_offers_the_least_confident_face_first(user, model_version):
    faces = faces_of(user)
    in_order = sorted(faces, key=lambda face: (face.confidence, face.pk))
    client = signed_in(user)

    page = client.get("/review/")

    assert page.context["face"] == in_order[0]
    assert "5 faces left to review" in page.content.decode()
    top_three = page.context["top_three"]
    assert [label for label, _ in top_three] == sorted(
        in_order[0].probabilities, key=in_order[0].probabilities.get, reverse=True
    )[:3]
    api = api_for(user).get("/api/v1/review-queue/").json()
    assert api["count"] == 5 and [face["id"] for face in api["results"]] == [face.pk for face in in_order]


def test_right_a_label_skip_and_undo_walk_the_queue(user, model_version):
    faces = sorted(faces_of(user), key=lambda face: (face.confidence, face.pk))
    client = signed_in(user)

    client.post(f"/review/{faces[0].pk}/", {"true_label": "right"})
    first = Face.objects.get(pk=faces[0].pk)
    assert first.is_correct is True and first.true_label == first.predicted_label and first.reviewed_by == user
    other_label = next(label for label in ("happy", "sad") if label != faces[1].predicted_label)
    client.post(f"/review/{faces[1].pk}/", {"true_label": other_label})
    second = Face.objects.get(pk=faces[1].pk)
    assert second.is_correct is False and second.true_label == other_label
    assert shown_face(client) == faces[2].pk

    client.post(f"/review/{faces[2].pk}/skip/")
    assert shown_face(client) == faces[3].pk  # skipped for now, still unreviewed
    assert Face.objects.get(pk=faces[2].pk).reviewed_at is None

    client.post("/review/undo/")  # the last review, of the second face, is withdrawn: it is first again
    assert Face.objects.get(pk=faces[1].pk).reviewed_at is None
    assert shown_face(client) == faces[1].pk
    assert "There is no review of yours to undo." in client.post("/review/undo/", follow=True).content.decode()


def test_a_bad_label_is_a_message_and_changes_nothing(user, model_version):
    [face, *_] = faces_of(user)

    response = signed_in(user).post(f"/review/{face.pk}/", {"true_label": "bored"}, follow=True)

    assert "Pick one of the seven expressions" in response.content.decode()
    assert Face.objects.get(pk=face.pk).reviewed_at is None


def test_every_face_skipped_starts_the_round_again(user, model_version):
    faces = sorted(faces_of(user), key=lambda face: (face.confidence, face.pk))
    client = signed_in(user)
    for face in faces:
        client.post(f"/review/{face.pk}/skip/")

    assert shown_face(client) == faces[0].pk


def test_a_reviewer_reviews_a_strangers_face_and_sees_it(user, reviewer, model_version):
    [face, *_] = faces_of(user)
    client = signed_in(reviewer)

    assert shown_face(client) in {f.pk for f in Face.objects.all()}
    picture = client.get(f"/faces/{face.pk}/image.jpg")
    assert picture.status_code == 200 and Image.open(io.BytesIO(picture.content)).format == "JPEG"
    client.post(f"/review/{face.pk}/", {"true_label": "fear"})
    assert Face.objects.get(pk=face.pk).reviewed_by == reviewer
    response = api_for(reviewer).patch(f"/api/v1/faces/{face.pk}/", {"true_label": "sad"}, format="json")
    assert response.status_code == 200 and response.json()["true_label"] == "sad"
    # The face, not the photo: the whole capture stays its owner's.
    assert client.get(f"/captures/{face.capture_id}/image.jpg").status_code == 404
    assert client.get(f"/captures/{face.capture_id}/").status_code == 404


def test_a_plain_user_gets_404_for_a_strangers_face(user, other_user, model_version):
    [face, *_] = faces_of(user)
    client = signed_in(other_user)

    assert shown_face(client) is None
    assert "Nothing left to review" in client.get("/review/").content.decode()
    assert client.post(f"/review/{face.pk}/", {"true_label": "fear"}).status_code == 404
    assert client.post(f"/review/{face.pk}/skip/").status_code == 404
    assert client.get(f"/faces/{face.pk}/image.jpg").status_code == 404
    api = api_for(other_user)
    assert api.get("/api/v1/review-queue/").json()["count"] == 0
    assert api.patch(f"/api/v1/faces/{face.pk}/", {"true_label": "sad"}, format="json").status_code == 404
    assert Face.objects.get(pk=face.pk).reviewed_at is None


def test_the_owner_sees_the_face_picture_cut_from_the_photo(user, model_version):
    [face, *_] = faces_of(user)

    picture = Image.open(io.BytesIO(signed_in(user).get(f"/faces/{face.pk}/image.jpg").content))

    assert picture.width == picture.height and picture.width > face.box_width


def test_sign_up_says_exactly_who_can_see_a_photo(client):
    page = client.get(reverse("sign_up")).content.decode()

    assert "staff see every photo in the admin" in page and "reviewers group see the faces" in page


def test_a_reviewer_sees_only_the_crop_of_a_face_never_the_photo_around_it(user, reviewer, model_version):
    capture = make_capture(user, tight_crop_bytes(), name="crop.png")  # classified whole: its box is the image
    face = capture.faces.get()

    picture = Image.open(io.BytesIO(signed_in(reviewer).get(f"/faces/{face.pk}/image.jpg").content))

    expected = Image.fromarray(np.frombuffer(bytes(face.crop), np.uint8).reshape(48, 48)).resize((320, 320))
    assert picture.mode == "L" and picture.size == (320, 320)
    assert np.abs(np.asarray(picture, dtype=int) - np.asarray(expected, dtype=int)).mean() < 3


def test_two_reviewers_on_one_face_the_second_changes_nothing(user, reviewer, django_user_model, model_version):
    [face, *_] = faces_of(user)
    second = django_user_model.objects.create_user("lise", password="unused password 2")
    second.groups.add(Group.objects.get(name="reviewers"))

    signed_in(reviewer).post(f"/review/{face.pk}/", {"true_label": "fear"})
    response = signed_in(second).post(f"/review/{face.pk}/", {"true_label": "sad"}, follow=True)

    assert "Someone reviewed that face a moment ago" in response.content.decode()
    assert (Face.objects.get(pk=face.pk).true_label, Face.objects.get(pk=face.pk).reviewed_by) == ("fear", reviewer)


def test_undo_leaves_a_review_changed_since_by_someone_else(user, reviewer, model_version):
    [face, *_] = faces_of(user)
    client = signed_in(reviewer)
    client.post(f"/review/{face.pk}/", {"true_label": "fear"})
    signed_in(user).post(f"/faces/{face.pk}/review/", {"true_label": "sad"})  # the owner corrects it

    client.post("/review/undo/")

    assert Face.objects.get(pk=face.pk).true_label == "sad"


def test_a_video_frames_face_is_said_to_be_from_that_video_at_that_time(user, model_version):
    video = read(user, face_video())
    frame = video.frames.order_by("video_time")[3]
    Face.objects.exclude(capture=frame).update(confidence=1.0)  # the queue offers this frame's face first

    page = signed_in(user).get("/review/").content.decode()

    assert f"Face 1 of {video.name} at 0:00.6" in page and "of a photo" not in page
