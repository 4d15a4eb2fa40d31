from django.urls import reverse

from classifier import services
from classifier.models import Capture
from ml.labels import EXPRESSIONS
from tests.classifier.corpus import encode, make_capture, no_face_photo, nothing_stored, stored_files

HISTORY = reverse("classifier:capture_list")


def test_history_lists_my_captures_with_thumbnail_label_confidence_and_review_state(
    user_client, user, other_user, model_version
):
    capture = make_capture(user)
    theirs = make_capture(other_user)
    face = capture.faces.get()
    page = user_client.get(HISTORY).content.decode()
    assert reverse("classifier:capture_thumbnail", args=[capture.pk]) in page
    assert reverse("classifier:capture_thumbnail", args=[theirs.pk]) not in page
    assert f"{face.predicted_label} {round(face.confidence * 100)}%" in page
    assert "not reviewed" in page


def test_history_is_paginated(user_client, user, model_version):
    no_face = encode(no_face_photo(), "PNG")
    for _ in range(21):
        make_capture(user, no_face, name="wall.png")
    first = user_client.get(HISTORY).content.decode()
    assert "Page 1 of 2 (21 captures)" in first
    second = user_client.get(HISTORY + "?page=2").content.decode()
    assert second.count('class="capture-item"') == 1
    assert user_client.get(HISTORY + "?page=99").status_code == 200  # past the end: the last page


def test_history_filters_by_label_and_review_state(user_client, user, model_version):
    right, wrong, unreviewed = (make_capture(user) for _ in range(3))
    label = right.faces.get().predicted_label
    other = next(expression for expression in EXPRESSIONS if expression != label)
    services.face_review(face=right.faces.get(), reviewer=user, true_label=label)
    services.face_review(face=wrong.faces.get(), reviewer=user, true_label=other)

    def listed(query: str) -> set[int]:
        page = user_client.get(HISTORY + query).content.decode()
        return {c.pk for c in (right, wrong, unreviewed) if reverse("classifier:capture_detail", args=[c.pk]) in page}

    assert listed("?state=right") == {right.pk}
    assert listed("?state=wrong") == {wrong.pk}
    assert listed("?state=reviewed") == {right.pk, wrong.pk}
    assert listed("?state=unreviewed") == {unreviewed.pk}
    assert listed(f"?label={label}") == {right.pk, wrong.pk, unreviewed.pk}
    assert listed(f"?label={other}") == set()
    assert listed(f"?label={label}&state=wrong") == {wrong.pk}
    assert "wrong: " + other in user_client.get(HISTORY + "?state=wrong").content.decode()


def test_review_right_with_one_click_then_change_my_mind(user_client, user, model_version):
    capture = make_capture(user)
    face = capture.faces.get()
    review = reverse("classifier:face_review", args=[face.pk])

    response = user_client.post(review, {"true_label": face.predicted_label})
    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:capture_detail", args=[capture.pk]) + f"#face-{face.pk}"
    face.refresh_from_db()
    assert face.is_correct is True and face.reviewed_by == user and face.reviewed_at is not None
    assert "Reviewed: right" in user_client.get(response["Location"]).content.decode()

    other = next(expression for expression in EXPRESSIONS if expression != face.predicted_label)
    user_client.post(review, {"true_label": other})
    face.refresh_from_db()
    assert face.true_label == other and face.is_correct is False
    page = user_client.get(response["Location"]).content.decode()
    assert f"Reviewed: wrong, it is {other}" in page
    # The tag on the photo says what the face shows now, and what the model had said.
    assert f'<span class="face-tag">1 · {other} <span class="face-tag-was">(not {face.predicted_label})</span>' in page

    user_client.post(review, {"true_label": ""})
    face.refresh_from_db()
    assert face.true_label is None and face.is_correct is None and face.reviewed_by is None


def test_review_with_an_unknown_label_changes_nothing(user_client, user, model_version):
    face = make_capture(user).faces.get()
    response = user_client.post(reverse("classifier:face_review", args=[face.pk]), {"true_label": "bored"}, follow=True)
    assert "Pick one of the seven expressions" in response.content.decode()
    face.refresh_from_db()
    assert face.true_label is None


def test_another_users_capture_and_face_are_404_in_pages(user_client, other_user, model_version, media_dir):
    theirs = make_capture(other_user)
    face = theirs.faces.get()
    for url in (
        reverse("classifier:capture_detail", args=[theirs.pk]),
        reverse("classifier:capture_delete", args=[theirs.pk]),
        reverse("classifier:capture_image", args=[theirs.pk]),
        reverse("classifier:capture_thumbnail", args=[theirs.pk]),
    ):
        assert user_client.get(url).status_code == 404, url
    assert user_client.post(reverse("classifier:capture_delete", args=[theirs.pk])).status_code == 404
    assert user_client.post(reverse("classifier:face_review", args=[face.pk]), {"true_label": "sad"}).status_code == 404
    face.refresh_from_db()
    assert face.true_label is None
    assert Capture.objects.filter(pk=theirs.pk).exists() and len(stored_files(media_dir)) == 2


def test_delete_a_capture_and_its_files(user_client, user, model_version, media_dir, run_on_commit):
    capture = make_capture(user)
    delete = reverse("classifier:capture_delete", args=[capture.pk])
    assert "Delete the capture of" in user_client.get(delete).content.decode()
    with run_on_commit():
        response = user_client.post(delete)
    assert response.status_code == 302 and response["Location"] == HISTORY
    assert nothing_stored(media_dir)


def test_images_are_served_to_their_owner_only(user_client, user, model_version, client):
    capture = make_capture(user)
    image = user_client.get(reverse("classifier:capture_image", args=[capture.pk]))
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert b"".join(image.streaming_content)[:2] == b"\xff\xd8"
    assert "private" in image["Cache-Control"]
    assert client.get(reverse("classifier:capture_image", args=[capture.pk])).status_code == 401
    assert client.get("/private-media/" + capture.image.name).status_code == 404  # no public media URL


def test_staff_see_everyones_images_in_the_admin(staff_user, user, model_version, client):
    capture = make_capture(user)
    client.force_login(staff_user)
    assert client.get(reverse("classifier:capture_thumbnail", args=[capture.pk])).status_code == 200
    for url in ("/admin/classifier/capture/", "/admin/classifier/face/", "/admin/classifier/modelversion/"):
        page = client.get(url)
        assert page.status_code == 200, url
    assert (
        reverse("classifier:capture_thumbnail", args=[capture.pk])
        in client.get("/admin/classifier/capture/").content.decode()
    )
    assert client.get(f"/admin/classifier/capture/{capture.pk}/change/").status_code == 200
    face_page = client.get(f"/admin/classifier/face/{capture.faces.first().pk}/change/").content.decode()
    assert "Model input" in face_page and 'src="data:image/png;base64,' in face_page  # the crop, drawn
    # ...but their own pages show only their own captures.
    assert reverse("classifier:capture_detail", args=[capture.pk]) not in client.get(HISTORY).content.decode()


def test_admin_pages_name_the_site_icon_and_keep_the_admin_title(staff_user, client):
    client.force_login(staff_user)
    page = client.get("/admin/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in page  # else browsers ask for a missing /favicon.ico
    assert "Site administration" in page


def test_admin_delete_removes_files(staff_user, user, model_version, client, media_dir, run_on_commit):
    capture = make_capture(user)
    client.force_login(staff_user)
    with run_on_commit():
        response = client.post(
            "/admin/classifier/capture/", {"action": "delete_selected", "_selected_action": [capture.pk], "post": "yes"}
        )
    assert response.status_code == 302
    assert nothing_stored(media_dir)


def test_pages_name_a_capture_by_its_time_not_the_site_wide_id(user_client, user, other_user, model_version):
    for _ in range(3):
        make_capture(other_user)  # site-wide ids 1-3 are someone else's
    capture = make_capture(user)

    listing = user_client.get(reverse("classifier:capture_list")).content.decode()
    detail = user_client.get(reverse("classifier:capture_detail", args=[capture.pk])).content.decode()

    for page in (listing, detail):
        assert f"Capture {capture.pk}" not in page
        assert f"Upload, {capture.created_at:%-d %b %Y}" in page
