"""The worker reading videos made here (a real face moving across the frame): its frames, faces and
tracks, turned upright, at the chosen rate; failing with the reason and keeping nothing; and deleting."""

import signal
import time
from dataclasses import replace
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from classifier import charts, selectors, services, training_data, video_reading
from classifier.models import Capture, Face, ModelVersion, Video
from classifier.videos import FaceTracker
from tests.classifier.corpus import nothing_stored, stored_files
from tests.classifier.video_corpus import (
    face_mov,
    face_video,
    face_webm,
    faceless_video,
    nothing_kept,
    read,
    sideways_face_video,
    upload,
)
from tests.conftest import db_worker_running, make_user


def run_worker() -> None:
    """The real django-tasks-db worker, in this process, until the queue is empty."""
    call_command("db_worker", "--batch", "--no-reload", "--no-startup-delay", stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db(transaction=True)  # the worker loop closes the database connection between tasks
def test_the_worker_reads_the_face_moving_across_the_video_into_one_track(model_version, media_dir):
    owner = make_user("ada")
    video = services.video_create(owner=owner, file=upload("clip.mp4", face_video()))  # committed: enqueued
    run_worker()

    video.refresh_from_db()
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"
    assert video.state == Video.State.SUCCEEDED and video.error == "" and video.model_version == model_version
    assert (video.samples_done, video.samples_total, video.fraction_done) == (10, 10, 1.0)
    frames = list(video.frames.order_by("video_time"))
    assert [frame.video_time for frame in frames] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8]
    assert {(frame.source, frame.owner_id, frame.width, frame.height) for frame in frames} == {
        ("video", owner.pk, 320, 240)
    }
    faces = [frame.faces.get() for frame in frames]
    assert {face.track for face in faces} == {1}
    lefts = [face.box_x for face in faces]
    assert lefts == sorted(lefts) and lefts[-1] - lefts[0] > 150  # she glides to the right
    assert all(face.crop and face.model_version == model_version for face in faces)
    # The frames are stored as captures' images are, in the video's frames folder, beside the video.
    folder = media_dir / video.frames_folder
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        name for frame in frames for name in (Path(frame.image.name).name, Path(frame.thumbnail.name).name)
    )
    # They count like any face: in the accuracy, and in the review queue.
    assert selectors.accuracy_summary(user=owner).unreviewed == 10
    assert selectors.review_queue(user=owner).count() == 10


@pytest.mark.parametrize("make, container", [(face_webm, "WebM"), (face_mov, "MOV")])
def test_webm_and_mov_are_read_too(user, model_version, make, container):
    video = read(user, make(), name=f"clip.{container.lower()}")
    assert video.container == container and video.state == Video.State.SUCCEEDED
    assert Face.objects.filter(capture__video=video, track=1).count() == 10


def test_two_faces_keep_a_track_each_as_they_pass(user, model_version):
    video = read(user, face_video(faces=2))
    tracks = selectors.video_timeline(video)

    assert [(track.number, len(track.points)) for track in tracks] == [(1, 10), (2, 10)]
    first, second = ([point.box[0] for point in track.points] for track in tracks)
    assert first == sorted(first) and second == sorted(second, reverse=True)  # one goes right, the other left
    assert all(point.box[1] < 100 for point in tracks[0].points)  # track 1 is the face above, first in reading order


def test_a_sideways_phone_video_is_turned_upright_before_its_faces_are_found(user, model_version):
    def boxes(video: Video) -> list[tuple[int, int, int, int]]:
        return [point.box for track in selectors.video_timeline(video) for point in track.points]

    upright = read(user, face_video(1.0, 10), name="upright.mp4")
    sideways = read(user, sideways_face_video(), name="sideways.mp4")
    # The same frames without the mark that says how to turn them are read lying down.
    lying = read(user, sideways_face_video(marked=False), name="lying.mp4")

    # Stored 240x320, shown (and so read and kept) 320x240, as the upright video.
    assert (sideways.width, sideways.height) == (320, 240) and (lying.width, lying.height) == (240, 320)
    assert {(frame.width, frame.height) for frame in sideways.frames.all()} == {(320, 240)}
    assert len(boxes(sideways)) == len(boxes(upright)) == 5
    for turned, straight in zip(boxes(sideways), boxes(upright), strict=True):
        assert max(abs(a - b) for a, b in zip(turned, straight, strict=True)) <= 3
    assert {(frame.width, frame.height) for frame in lying.frames.all()} == {(240, 320)}


def test_a_video_without_faces_is_read_and_keeps_no_frame(user, model_version, media_dir):
    video = read(user, faceless_video())

    assert video.state == Video.State.SUCCEEDED and video.samples_done == 5 and not video.frames.exists()
    assert [path.name for path in stored_files(media_dir)] == [Path(video.file.name).name]


def test_the_rate_chooses_how_many_frames_are_read(user, model_version):
    assert read(user, face_video(), samples_per_second=1).samples_done == 2
    assert read(user, face_video(), samples_per_second=10).samples_done == 20
    assert read(user, face_video(fps=5), samples_per_second=10).samples_done == 10  # never more than every frame


def test_a_video_with_fewer_frames_a_second_than_asked_for_is_read_and_said_to_be_read_at_its_own_rate(
    user, model_version
):
    video = read(user, face_video(seconds=3, fps=2), samples_per_second=10)

    assert (video.samples_per_second, video.samples_total, video.samples_done) == (2.0, 6, 6)
    [track] = selectors.video_timeline(video)
    chart = charts.timeline_chart(track, duration=video.duration, samples_per_second=video.samples_per_second)
    # Frames half a second apart, one after another, are one stroke, not six dots.
    assert all(line.path.count("L") == 5 for line in chart.lines)


def test_without_a_model_the_video_fails_with_the_reason_and_keeps_nothing(user, settings, tmp_path, media_dir):
    settings.EMOTIONSITE_MODEL_DIR = tmp_path / "no-models"
    video = read(user, face_video())

    assert video.state == Video.State.FAILED and video.error == "The expression model is not available."
    assert not Capture.objects.exists() and not Face.objects.exists()
    assert [path.name for path in stored_files(media_dir)] == [Path(video.file.name).name]


def test_a_video_deleted_while_it_is_read_stops_the_worker_and_leaves_nothing(
    user, model_version, media_dir, monkeypatch, run_on_commit
):
    video = services.video_create(owner=user, file=upload("clip.mp4", face_video()))
    real_find_faces, calls = video_reading.find_faces, []

    def find_faces_then_delete(picture):
        calls.append(picture)
        if len(calls) == 4:  # three frames with a face are stored by now
            assert len(stored_files(media_dir / video.frames_folder)) == 6
            services.video_delete(video=Video.objects.get(pk=video.pk))
        return real_find_faces(picture)

    monkeypatch.setattr(video_reading, "find_faces", find_faces_then_delete)
    monkeypatch.setattr(video_reading, "HEARTBEAT_SECONDS", 0)  # it finds out at the end of that frame
    with run_on_commit():
        video_reading.video_read(video.pk)

    assert len(calls) == 4 and nothing_stored(media_dir) and not Video.objects.exists()


def wait_until_half_way(video: Video, worker) -> None:
    """Until a real worker has read 20 frames of the video (of the 300 of face_video(30.0, 10))."""
    deadline = time.monotonic() + 120
    while Video.objects.get(pk=video.pk).samples_done < 20:
        assert worker.poll() is None, worker.stderr.read().decode()
        assert time.monotonic() < deadline, "the worker never read 20 frames"
        time.sleep(0.1)


def only_the_video_file_is_left(video: Video, media_dir: Path) -> bool:
    """No capture, face, timeline nor frame of the video: only its own file."""
    return (
        not Capture.objects.exists()
        and not Face.objects.exists()
        and selectors.video_timeline(video) == []
        and not (media_dir / video.frames_folder).exists()
        and [path.name for path in stored_files(media_dir)] == [Path(video.file.name).name]
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_video_leaves_it_failed_with_no_timeline(settings, model_version, media_dir):
    """The worker is a real `manage.py db_worker` process, killed (SIGKILL) half way through a video."""
    owner = make_user("ada")
    video = services.video_create(owner=owner, file=upload("long.mp4", face_video(30.0, 10)))
    frames_folder = media_dir / video.frames_folder
    with db_worker_running(settings, media_dir) as worker:
        wait_until_half_way(video, worker)
    assert len(stored_files(frames_folder)) >= 40  # 20 frames and their thumbnails, and no capture yet

    video.refresh_from_db()
    assert video.state == Video.State.RUNNING and not video.worker_stopped  # nobody knows yet
    settings.EMOTIONSITE_VIDEO = replace(settings.EMOTIONSITE_VIDEO, stale_seconds=1)
    time.sleep(1.5)
    assert video.state_now == Video.State.FAILED  # pages and the API say so before anything is written
    assert [stale.pk for stale in services.videos_fail_stale()] == [video.pk]

    video.refresh_from_db()
    assert video.state == Video.State.FAILED and video.error.startswith("The worker stopped while reading this video")
    assert only_the_video_file_is_left(video, media_dir)
    # And the worker's next video is read as usual.
    following = services.video_create(owner=owner, file=upload("next.mp4", face_video()))
    run_worker()
    assert Video.objects.get(pk=following.pk).state == Video.State.SUCCEEDED


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_told_to_stop_mid_video_fails_it_at_once_and_keeps_nothing(settings, model_version, media_dir):
    """SIGTERM (`docker stop`, a deploy) to a real `manage.py db_worker` half way through a video."""
    owner = make_user("ada")
    video = services.video_create(owner=owner, file=upload("long.mp4", face_video(30.0, 10)))
    with db_worker_running(settings, media_dir) as worker:
        wait_until_half_way(video, worker)
        worker.send_signal(signal.SIGTERM)
        # At once: well inside docker stop's 10 s grace, and nowhere near stale_seconds.
        assert worker.wait(timeout=10) == 0

    video.refresh_from_db()
    assert video.state == Video.State.FAILED and video.finished_at is not None
    assert video.error.startswith("The worker was stopped (SIGTERM) after ")
    assert only_the_video_file_is_left(video, media_dir)


def test_the_tracker_follows_one_face_and_tells_several_apart():
    tracker = FaceTracker(samples_per_second=5.0)
    assert tracker.assign(0.0, [(0, 0, 100, 100), (300, 0, 100, 100)]) == [1, 2]
    # Both moved: the first by 70 px (overlap under 0.3, centre shift under a side), the second a little.
    assert tracker.assign(0.2, [(320, 0, 100, 100), (70, 0, 100, 100)]) == [2, 1]
    assert tracker.assign(0.4, [(80, 0, 100, 100)]) == [1]  # the second is not found here
    assert tracker.assign(1.2, [(90, 0, 100, 100), (320, 0, 100, 100)]) == [1, 2]  # back within a second
    assert tracker.assign(2.6, [(320, 0, 100, 100)]) == [3]  # lost for longer: a new face
    assert tracker.assign(2.8, [(330, 0, 100, 100), (335, 5, 100, 100)]) == [3, 4]  # never two in one track
    assert tracker.assign(3.0, [(600, 0, 100, 100)]) == [5]  # a jump of over a side is another face
    assert tracker.count == 5


def test_at_a_slow_rate_the_tracker_waits_for_the_next_sample():
    # Read at 0.5 samples/s, samples come 2 s apart, longer than a second's gap: a face seen in two
    # samples in a row is one face; one missing from a sample comes back as a new one.
    tracker = FaceTracker(samples_per_second=0.5)
    assert tracker.assign(0.0, [(0, 0, 100, 100)]) == [1]
    assert tracker.assign(2.0, [(40, 0, 100, 100)]) == [1]
    assert tracker.assign(6.0, [(80, 0, 100, 100)]) == [2]


def test_a_video_read_at_half_a_sample_a_second_keeps_its_face_in_one_track(user, model_version):
    video = read(user, face_video(12.0, 2), samples_per_second=0.5)  # she moves about half a side a sample
    faces = Face.objects.filter(capture__video=video).order_by("capture__video_time")
    assert [face.capture.video_time for face in faces] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert [face.track for face in faces] == [1] * 6


# What deleting removes


def test_deleting_the_account_deletes_its_videos_and_their_files(user, model_version, media_dir, run_on_commit):
    read(user, face_video())
    services.video_create(owner=user, file=upload("queued.mp4", face_video()))

    with run_on_commit():
        services.user_delete(user=user)

    assert nothing_kept(media_dir)


def test_a_model_version_that_read_a_video_is_kept(user, model_version):
    read(user, face_video())
    with pytest.raises(services.DeleteRefused):
        services.model_version_delete(model_version=model_version)
    assert ModelVersion.objects.filter(pk=model_version.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_videos_reviewed_frames_are_never_split_between_training_and_the_held_out_test(model_version):
    # Frames a fifth of a second apart are nearly the same picture: trained on some and tested on the
    # others, the candidate would be tested on what it learned, and the promotion gate would mean little.
    owner = make_user("ada")
    sizes = [(320, 240), (352, 264), (384, 288)]  # three videos whose frames all differ
    videos = [services.video_create(owner=owner, file=upload(f"{size}.mp4", face_video(size=size))) for size in sizes]
    run_worker()
    for face in Face.objects.filter(capture__video__in=videos):
        services.face_review(face=face, reviewer=owner, true_label="happy")

    faces = training_data.reviewed_faces()

    split_of_crop = {
        crop.tobytes(): name
        for name, split in (("train", faces.train), ("validation", faces.validation), ("held_out", faces.held_out))
        for crop in split.images
    }
    assert len(split_of_crop) == Face.objects.count() >= 20
    for video in videos:
        crops = [bytes(face.crop) for face in Face.objects.filter(capture__video=video)]
        assert len({split_of_crop[crop] for crop in crops}) == 1, video
