"""The video pages and API: the upload and its limits, every bad input refused with its reason on both
doors, the progress, the emotion timeline, whose videos they are, and deleting from a page or the admin."""

import csv
import io
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from classifier import selectors, services, video_reading
from classifier.models import Face, Video
from tests.classifier.corpus import api_for, signed_in, stored_files
from tests.classifier.test_media_faults import orphan
from tests.classifier.video_corpus import (
    REFUSED_VIDEOS,
    face_video,
    face_webm,
    faceless_video,
    nothing_kept,
    read,
    upload,
)
from tests.conftest import make_user, unwritable

VIDEOS = "/api/v1/videos/"


def post_page(client, name: str, content: bytes, **data):
    return client.post(
        reverse("classifier:video_list"), {"file": upload(name, content), "samples_per_second": 5, **data}
    )


def post_api(api: APIClient, name: str, content: bytes, CONTENT_LENGTH: str | None = None, **data):
    extra = {"CONTENT_LENGTH": CONTENT_LENGTH} if CONTENT_LENGTH else {}
    return api.post(VIDEOS, {"file": upload(name, content), **data}, format="multipart", **extra)


# The upload page and its limits


def test_the_videos_page_states_the_limits_and_the_default_rate(user_client):
    page = user_client.get(reverse("classifier:video_list")).content.decode()
    assert "MP4, WebM or MOV; up to 200 MB, 10 min and 8.8 megapixels a frame (4K)" in page
    assert 'name="samples_per_second" value="5"' in page and 'min="0.5"' in page and 'max="10.0"' in page
    assert 'href="/videos/"' in page  # in the navigation


def test_a_video_uploaded_on_the_page_is_kept_privately_and_queued_for_the_worker(
    user, user_client, model_version, media_dir, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_page(user_client, "holiday.mp4", face_video(), samples_per_second=2)

    video = Video.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/videos/{video.pk}/"
    assert (video.name, video.container, video.codec, video.width, video.height) == (
        "holiday.mp4",
        "MP4",
        "h264",
        320,
        240,
    )
    assert (video.duration, video.frame_rate, video.samples_per_second, video.samples_total) == (2.0, 10.0, 2.0, 4)
    assert video.state == Video.State.QUEUED and video.owner == user
    assert [path.relative_to(media_dir).parent for path in stored_files(media_dir)] == [Path(f"videos/{user.pk}")]
    task = DBTaskResult.objects.get()
    assert task.task_path == "classifier.tasks.read_video" and task.args_kwargs["args"] == [video.pk]
    # The file has no URL: media is never served as a folder.
    assert user_client.get(f"/private-media/{video.file.name}").status_code == 404

    page = user_client.get(response["Location"]).content.decode()
    assert "waiting for the worker" in page and "<progress" in page and "js/video.js" in page


def test_a_large_upload_spooled_to_disk_is_checked_and_kept_as_a_small_one(
    settings, user, user_client, model_version, media_dir
):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # Django writes larger uploads to a temporary file
    content = face_video()
    response = post_page(user_client, "large.mp4", content)

    video = Video.objects.get()
    assert response.status_code == 302 and video.size == len(content) and video.duration == 2.0
    assert (media_dir / video.file.name).read_bytes() == content
    video_reading.video_read(video.pk)
    video.refresh_from_db()
    assert video.state == Video.State.SUCCEEDED and video.frames.count() == 10


def test_a_rate_left_empty_on_the_page_is_the_default_rate_as_in_the_api(user_client, api, model_version, settings):
    post_page(user_client, "page.mp4", face_video(), samples_per_second="")
    api.post("/api/v1/videos/", {"file": upload("api.mp4", face_video())}, format="multipart")

    rates = set(Video.objects.values_list("samples_per_second", flat=True))
    assert Video.objects.count() == 2 and rates == {settings.EMOTIONSITE_VIDEO.samples_per_second}


@pytest.mark.parametrize("rate", ["0", "0.2", "11", "fast"])
def test_a_rate_out_of_range_is_refused_and_nothing_is_kept(user_client, api, model_version, media_dir, rate):
    page = post_page(user_client, "clip.mp4", face_video(), samples_per_second=rate)
    response = post_api(api, "clip.mp4", face_video(), samples_per_second=rate)

    assert page.status_code == 400 and "samples_per_second" in page.context["form"].errors
    assert response.status_code == 400 and "samples_per_second" in response.json()
    assert nothing_kept(media_dir)


# Bad input: a clear 400 or 413 with the reason, nothing stored


def refused(name: str):
    make, status, reason = REFUSED_VIDEOS[name]
    marks = [pytest.mark.slow] if name == "huge.mp4" else []  # 10000x10000 takes ~2 s to make, once
    return pytest.param(name, make, status, reason, marks=marks, id=name)


@pytest.mark.parametrize("name, make, status, reason", [refused(name) for name in REFUSED_VIDEOS])
def test_a_bad_video_is_refused_with_its_reason_on_the_page_and_in_the_api(
    user_client, api, model_version, media_dir, name, make, status, reason
):
    content = make()
    page = post_page(user_client, name, content)
    response = post_api(api, name, content)

    assert page.status_code == status and reason in " ".join(page.context["form"].errors["file"])
    assert response.status_code == status
    assert reason in (response.json()["detail"] if status == 413 else response.json()["file"][0])
    assert nothing_kept(media_dir)


def test_a_file_whose_declared_type_is_another_format_is_refused(api, model_version, media_dir):
    response = api.post(VIDEOS, {"file": upload("clip", face_video(), "video/webm")}, format="multipart")
    assert response.status_code == 400
    assert response.json()["file"] == [
        "The file says it is video/webm but holds an MP4 video: rename it to match, then upload it again."
    ]
    assert nothing_kept(media_dir)


def test_a_video_over_the_byte_limit_is_413_and_one_announced_over_it_is_refused_unread(
    settings, user_client, api, model_version, media_dir
):
    settings.EMOTIONSITE_VIDEO = replace(settings.EMOTIONSITE_VIDEO, max_bytes=2**20)
    content = face_video() + b"\0" * 2**20  # a good video, padded past 1 MB

    page = post_page(user_client, "clip.mp4", content)
    response = post_api(api, "clip.mp4", content)
    announced = post_api(api, "clip.mp4", face_video(), CONTENT_LENGTH=str(300 * 2**20))
    announced_page = user_client.post(
        reverse("classifier:video_list"), {"file": upload("clip.mp4", face_video())}, CONTENT_LENGTH=str(300 * 2**20)
    )

    assert page.status_code == 413 and "the limit is 1 MB" in page.context["form"].errors["file"][0]
    assert response.status_code == 413 and "; the limit is 1 MB." in response.json()["detail"]
    assert announced.status_code == 413 and announced.json() == {"detail": "The upload is over the limit of 1 MB."}
    assert announced_page.status_code == 413 and "The upload is over the limit of 1 MB." in announced_page.text
    assert nothing_kept(media_dir)


# The timeline: page and API


def test_the_timeline_page_draws_the_face_and_links_each_dot_to_its_frame(user, user_client, model_version):
    video = read(user, face_video())
    frames = list(video.frames.order_by("video_time"))

    page = user_client.get(f"/videos/{video.pk}/").content.decode()
    assert "1 face followed through 10 frames, each as a track." in page and "js/video.js" not in page
    assert page.count('class="timeline-line expression-') == 7
    assert page.count('<circle class="timeline-mark') == 10
    for frame in frames:
        face = frame.faces.get()
        link = f'href="/captures/{frame.pk}/#face-{face.pk}"'
        assert page.count(link) == 2  # the chart's dot and the table's row
    assert "0:01.8" in page and 'role="img" aria-label="Track 1, in 10 frames from 0:00.0 to 0:01.8:' in page

    frame_page = user_client.get(f"/captures/{frames[2].pk}/").content.decode()
    assert "Frame at 0:00.4 of clip.mp4" in frame_page and 'class="face-box"' in frame_page
    assert f'href="/captures/{frames[1].pk}/" rel="prev"' in frame_page
    assert f'href="/captures/{frames[3].pk}/" rel="next"' in frame_page
    assert f'href="/videos/{video.pk}/"' in frame_page


def test_the_page_of_a_video_without_faces_says_so(user, user_client, model_version):
    video = read(user, faceless_video())
    assert "No face was found in the 5 frames read." in user_client.get(f"/videos/{video.pk}/").content.decode()


def test_the_page_of_a_failed_video_gives_the_reason(user, user_client, settings, tmp_path):
    settings.EMOTIONSITE_MODEL_DIR = tmp_path / "no-models"
    video = read(user, face_video())
    page = user_client.get(f"/videos/{video.pk}/").content.decode()
    assert "This video could not be read. The expression model is not available." in page
    assert "Failed" in user_client.get("/videos/").content.decode()


def test_a_review_of_a_frames_face_shows_in_the_timeline_and_the_accuracy(user, user_client, model_version):
    video = read(user, face_video())
    face = Face.objects.filter(capture__video=video).order_by("capture__video_time").first()
    wrong = "sad" if face.predicted_label != "sad" else "fear"

    user_client.post(f"/faces/{face.pk}/review/", {"true_label": wrong})

    assert f"wrong: {wrong}" in user_client.get(f"/videos/{video.pk}/").content.decode()
    summary = selectors.accuracy_summary(user=user)
    assert (summary.reviewed, summary.correct, summary.unreviewed) == (1, 0, 9)


def test_the_video_api_creates_lists_shows_the_timeline_and_deletes(user, model_version, media_dir, run_on_commit):
    api = api_for(user)
    created = post_api(api, "clip.webm", face_webm(), samples_per_second=2.5)
    assert created.status_code == 201
    body = created.json()
    assert body["state"] == "queued" and body["progress_summary"] == "waiting for the worker"
    assert (body["container"], body["samples_per_second"], body["samples_total"]) == ("WebM", 2.5, 5)

    video_reading.video_read(body["id"])
    listed = api.get(VIDEOS).json()
    detail = api.get(f"{VIDEOS}{body['id']}/").json()

    assert listed["count"] == 1 and "timeline" not in listed["results"][0]
    assert listed["results"][0] | {"face_count": 5, "track_count": 1} == listed["results"][0]
    assert detail["state"] == "succeeded" and detail["fraction_done"] == 1.0 and detail["model_version"] == "tiny-1"
    (track,) = detail["timeline"]
    assert track["number"] == 1 and [point["time"] for point in track["points"]] == [0.0, 0.4, 0.8, 1.2, 1.6]
    point = track["points"][0]
    assert set(point["probabilities"]) == set(Face.objects.get(pk=point["face"]).probabilities)
    frame = api.get(f"/api/v1/captures/{point['capture']}/").json()
    assert frame["video"] == body["id"] and frame["video_time"] == 0.0 and frame["faces"][0]["id"] == point["face"]
    assert api.patch(f"/api/v1/faces/{point['face']}/", {"true_label": "happy"}, format="json").status_code == 200

    with run_on_commit():
        assert api.delete(f"{VIDEOS}{body['id']}/").status_code == 204
    assert nothing_kept(media_dir)


def test_the_schema_describes_the_video_api(api):
    schema = api.get("/api/schema/?format=json").json()
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/videos/"])
    assert {"get", "delete"} <= set(schema["paths"]["/api/v1/videos/{id}/"])
    upload_schema = schema["components"]["schemas"]["VideoCreateRequest"]["properties"]
    assert "up to 200 MB, 10 min" in upload_schema["file"]["description"]
    assert "timeline" in schema["components"]["schemas"]["VideoDetail"]["properties"]


# Whose videos, and what deleting removes


def test_a_video_its_frames_and_their_faces_are_their_owners_alone(user, model_version):
    video = read(user, face_video())
    frame = video.frames.first()
    other = make_user("grace")
    client, api = signed_in(other), api_for(other)

    for path in (f"/videos/{video.pk}/", f"/videos/{video.pk}/delete/", f"/captures/{frame.pk}/"):
        assert client.get(path).status_code == 404
    assert client.get(f"/captures/{frame.pk}/image.jpg").status_code == 404
    assert api.get(f"{VIDEOS}{video.pk}/").status_code == 404 and api.get(VIDEOS).json()["count"] == 0
    assert api.delete(f"{VIDEOS}{video.pk}/").status_code == 404 and Video.objects.filter(pk=video.pk).exists()
    assert APIClient().get(VIDEOS).status_code == 401


def test_a_videos_frames_are_listed_with_it_not_in_the_history(user, user_client, api, model_version):
    read(user, face_video())
    assert api.get("/api/v1/captures/").json()["count"] == 0
    assert "No captures" in user_client.get("/captures/").content.decode()
    page = user_client.get("/videos/").content.decode()
    assert "clip.mp4" in page and "Succeeded: 10 faces in 1 track" in page


def test_deleting_a_video_on_its_page_deletes_its_frames_faces_and_files(
    user, user_client, model_version, media_dir, run_on_commit
):
    video = read(user, face_video())
    assert "the 10 frames kept from it" in user_client.get(f"/videos/{video.pk}/delete/").content.decode()

    with run_on_commit():
        response = user_client.post(f"/videos/{video.pk}/delete/")

    assert response.status_code == 302 and response["Location"] == "/videos/"
    assert nothing_kept(media_dir)


def test_staff_delete_a_video_in_the_admin_with_its_files(user, staff_client, model_version, media_dir, run_on_commit):
    video = read(user, face_video())
    assert staff_client.get(f"/admin/classifier/video/{video.pk}/change/").status_code == 200

    with run_on_commit():
        response = staff_client.post(f"/admin/classifier/video/{video.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302 and nothing_kept(media_dir)


# The media folder's faults, and the files no row names


def test_a_video_uploaded_into_an_unwritable_media_folder_is_a_clear_503(api, user_client, model_version, media_dir):
    with unwritable(media_dir):
        response = post_api(api, "clip.mp4", face_video())
        page = post_page(user_client, "clip.mp4", face_video())

    assert response.status_code == 503
    assert response.json() == {
        "detail": "Videos cannot be stored right now (the server's media folder is not writable); "
        "nothing was stored. Try again later."
    }
    assert page.status_code == 503 and "Videos cannot be stored right now" in page.content.decode()
    assert nothing_kept(media_dir)


def test_a_video_whose_files_cannot_be_removed_is_kept_and_says_503(
    user, user_client, api, model_version, media_dir, run_on_commit
):
    video = read(user, face_video())
    files = sorted(stored_files(media_dir))

    with unwritable(media_dir / video.frames_folder), run_on_commit():
        response = api.delete(f"{VIDEOS}{video.pk}/")
        page = user_client.post(f"/videos/{video.pk}/delete/")

    assert response.status_code == 503 and "The video cannot be deleted right now" in response.json()["detail"]
    assert page.status_code == 503 and "The video cannot be deleted right now" in page.content.decode()
    assert Video.objects.filter(pk=video.pk).exists() and video.frames.count() == 10
    assert sorted(stored_files(media_dir)) == files


def test_a_videos_files_are_no_orphans_but_what_a_killed_worker_left_is(user, model_version, media_dir):
    read_video = read(user, face_video())
    being_read = services.video_create(owner=user, file=upload("queued.mp4", face_video()))
    Video.objects.filter(pk=being_read.pk).update(state=Video.State.RUNNING)
    hours_ago = timedelta(hours=3)
    its_frame = orphan(media_dir, f"{being_read.frames_folder}/000000000.jpg", age=hours_ago)
    left_by_a_kill = orphan(media_dir, f"videos/{user.pk}/0123abcd-frames/000000200.jpg", age=hours_ago)

    found = selectors.orphan_media_files(min_age=timedelta(hours=1))

    assert [orphan.name for orphan in found.orphans] == [f"videos/{user.pk}/0123abcd-frames/000000200.jpg"]
    assert found.checked == 2 + 2 * read_video.frames.count() + 2  # two videos, the frames, the two left
    assert its_frame.exists() and left_by_a_kill.exists()


def test_deleting_the_account_empties_its_videos_folder(user, model_version, media_dir, run_on_commit):
    read(user, face_video())
    orphan(media_dir, f"videos/{user.pk}/0123abcd-frames/000000200.jpg", age=timedelta(hours=3))

    with run_on_commit():
        services.user_delete(user=user)

    assert nothing_kept(media_dir) and not (media_dir / "videos" / str(user.pk)).exists()


def test_the_exports_say_which_video_each_frames_face_comes_from_when_and_its_track(user, model_version):
    video = read(user, face_video(2.0, 10))
    rows = list(csv.DictReader(io.StringIO(b"".join(signed_in(user).get("/captures/export.csv")).decode())))
    records = json.loads(b"".join(signed_in(user).get("/captures/export.json")))

    faces = Face.objects.filter(capture__video=video).select_related("capture").order_by("capture_id", "number")
    assert len(records) == len(rows) == faces.count() > 0
    for record, row, face in zip(records, rows, faces, strict=True):
        assert record["video_id"] == video.pk and int(row["video_id"]) == video.pk
        assert record["video_time"] == face.capture.video_time and float(row["video_time"]) == face.capture.video_time
        assert record["track"] == face.track == 1 and row["track"] == "1"
