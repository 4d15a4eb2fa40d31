"""The worker's side of a video: sample its frames, find and read their faces, follow them, keep it all at once.

A video's life. `services.video_create` (the videos page, the API) checks an upload all through, stores
it and its queued Video row, and enqueues `classifier.tasks.read_video`. The worker runs `video_read`:
it reads the video's frames at its `samples_per_second` (`classifier.videos.sampled_frames`), finds the
faces in each (`ml.faces.find_faces`), numbers them by track (`classifier.videos.FaceTracker`), stores
each frame that has a face as a capture's image is stored, in the video's frames folder, and writes its
progress and a heartbeat once a second. The faces are read by the active model version in batches, and
only then are every frame's capture and faces written, with the state "succeeded", in one transaction
(`services.video_frames_store`). A video that cannot be read through is marked failed with the reason;
a worker told to stop (SIGTERM) marks the video failed at once and removes its frames; a worker killed
on the way leaves only files in the frames folder, which `services.videos_fail_stale` removes when it
marks the video failed. Either way no capture, face or timeline of it is left.
"""

import logging
from time import monotonic
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from classifier import services, videos
from classifier.models import ModelVersion, Video
from classifier.worker_signals import StopOnSignal, WorkerStopping
from ml.faces import find_faces
from ml.labels import EXPRESSIONS

if TYPE_CHECKING:
    from ml.predictor import Predictor

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0  # how often a running video writes its progress
PREDICTION_BATCH = 256  # crops read by the model at once: one call costs far less than many


class VideoAbandoned(Exception):
    """The video's row is gone (deleted) or no longer running (marked failed as stale): keep nothing."""


def _running(video_id: int):
    return Video.objects.filter(pk=video_id, state=Video.State.RUNNING)


def video_read(video_id: int) -> None:
    """Read a queued video to its end (the worker's task): succeeded with its faces, or failed with the reason."""
    services.videos_fail_stale()
    now = timezone.now()
    if not Video.objects.filter(pk=video_id, state=Video.State.QUEUED).update(
        state=Video.State.RUNNING, started_at=now, heartbeat_at=now
    ):
        return  # deleted before it started, or already read
    video = Video.objects.get(pk=video_id)
    kept = False
    stop = StopOnSignal()
    try:
        # First: loading the model imports Paddle, which sets a SIGTERM handler of its own over any before it.
        model_version, predictor = services.active_predictor()
        with stop:
            kept = _read_and_keep(video, model_version, predictor, stop)
    except WorkerStopping as stopping:
        error = (
            f"The worker was stopped ({stopping}) after {Video.objects.get(pk=video_id).samples_done} sampled "
            "frames. Nothing of this video was kept: upload it again to read it."
        )
        if _running(video_id).update(state=Video.State.FAILED, error=error, finished_at=timezone.now()):
            logger.warning("Video %s: %s", video_id, error)
    except VideoAbandoned:
        logger.warning("Video %s was deleted or marked failed while it was read; its frames are dropped", video_id)
    except Exception as error:
        if not isinstance(error, videos.VideoUnreadable | services.ModelUnavailable | services.MediaUnavailable):
            logger.exception("Video %s failed", video_id)
        message = "The expression model is not available." if isinstance(error, services.ModelUnavailable) else None
        _running(video_id).update(
            state=Video.State.FAILED,
            error=message or str(error) or type(error).__name__,
            finished_at=timezone.now(),
        )
    finally:
        if not kept:
            services.media_folder_remove(video.frames_folder)
    stop.pass_on()


def _read_and_keep(video: Video, model_version: ModelVersion, predictor: "Predictor", stop: StopOnSignal) -> bool:
    limits = settings.EMOTIONSITE_VIDEO
    tracker = videos.FaceTracker(samples_per_second=video.samples_per_second)
    found = []  # (time, stored frame, finding, tracks) of each sample with a face
    samples, last_report = 0, monotonic()
    with default_storage.open(video.file.name, "rb") as file:
        for sample in videos.sampled_frames(
            file,
            samples_per_second=video.samples_per_second,
            max_side=limits.frame_max_side,
            max_pixels=limits.max_pixels,
        ):
            samples += 1
            finding = find_faces(sample.picture)
            if finding.faces:
                stored = services.video_frame_save(video=video, time=sample.time, picture=sample.picture)
                tracks = tracker.assign(sample.time, [face.box for face in finding.faces])
                found.append((sample.time, stored, finding, tracks))
            if monotonic() - last_report >= HEARTBEAT_SECONDS:
                last_report = monotonic()
                _report(video, samples)

    crops = [face.crop for _, _, finding, _ in found for face in finding.faces]
    probabilities = np.empty((0, len(EXPRESSIONS)), np.float32)
    for start in range(0, len(crops), PREDICTION_BATCH):
        batch = predictor.predict(np.stack(crops[start : start + PREDICTION_BATCH]))
        probabilities = np.concatenate([probabilities, batch])
        _report(video, samples)
    frames, start = [], 0
    for sample_time, stored, finding, tracks in found:
        end = start + len(finding.faces)
        frames.append(services.VideoFrameReading(sample_time, stored, finding, probabilities[start:end], tracks))
        start = end
    with stop.held():
        stored = services.video_frames_store(video=video, model_version=model_version, frames=frames, samples=samples)
    if not stored:
        raise VideoAbandoned(f"video {video.pk} is no longer running")
    logger.info("Video %s read: %s frames, %s faces in %s tracks", video.pk, samples, len(crops), tracker.count)
    return True


def _report(video: Video, samples: int) -> None:
    """Progress and a heartbeat, only while the row is still running; else the worker must stop."""
    # The estimate made at upload may fall short of the frames really sampled (a variable frame rate).
    if not _running(video.pk).update(
        samples_done=samples, samples_total=max(samples, video.samples_total), heartbeat_at=timezone.now()
    ):
        raise VideoAbandoned(f"video {video.pk} is no longer running")
