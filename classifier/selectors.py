"""Every read that more than one door needs: whose captures, which model version, how accurate."""

import os
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Count, DateField, Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import User
from classifier.models import Capture, Face, ModelActivation, ModelVersion, TrainingJob, Video, WorkerHeartbeat
from ml.labels import EXPRESSIONS


def captures_visible_to(user: User) -> QuerySet[Capture]:
    """The user's own captures; staff included (they see everyone's in the admin)."""
    if not user.is_authenticated:
        return Capture.objects.none()
    return Capture.objects.filter(owner=user)


def sees_every_capture(user: User) -> bool:
    """Staff who may view captures in the admin: they see every user's photos, there and in site exports."""
    return user.is_authenticated and user.is_staff and user.has_perm("classifier.view_capture")


def captures_with_images_visible_to(user: User) -> QuerySet[Capture]:
    """Whose images this user may load: their own, and everyone's for staff who see every capture."""
    if sees_every_capture(user):
        return Capture.objects.all()
    return captures_visible_to(user)


def faces_with_images_visible_to(user: User) -> QuerySet[Face]:
    """The faces of the captures whose images this user may load."""
    return Face.objects.filter(capture__in=captures_with_images_visible_to(user))


def faces_visible_to(user: User) -> QuerySet[Face]:
    if not user.is_authenticated:
        return Face.objects.none()
    return Face.objects.filter(capture__owner=user)


REVIEW_ANY_FACE = "classifier.review_any_face"


def faces_reviewable_by(user: User) -> QuerySet[Face]:
    """Whose faces this user may review (and see, cut from their photo): their own; everyone's for reviewers."""
    if user.is_authenticated and user.has_perm(REVIEW_ANY_FACE):
        return Face.objects.all()
    return faces_visible_to(user)


def faces_for_export(*, user: User, site_wide: bool = False) -> QuerySet[Face]:
    """The user's faces (everyone's, for staff who see every capture and ask for the site), in capture order,
    with what an export shows."""
    faces = Face.objects.all() if site_wide and sees_every_capture(user) else faces_visible_to(user)
    return faces.select_related("capture__owner", "model_version", "reviewed_by").order_by("capture_id", "number", "id")


def review_queue(*, user: User, skipped: Collection[int] = ()) -> QuerySet[Face]:
    """The unreviewed faces this user may review, least confident first (where a review teaches most)."""
    faces = faces_reviewable_by(user).filter(reviewed_at__isnull=True).exclude(pk__in=skipped)
    return faces.select_related("capture__video").order_by("confidence", "id")


def capture_list(
    *,
    user: User,
    label: str | None = None,
    reviewed: bool | None = None,
    correct: bool | None = None,
    video_frames: bool = False,
) -> QuerySet[Capture]:
    """The user's captures, newest first, with faces prefetched; a video's frames only with video_frames
    (they are listed with their video).

    The filters apply to one face together: label=happy, correct=False keeps captures with a face
    predicted happy that was reviewed as wrong.
    """
    captures = captures_visible_to(user).select_related("model_version").prefetch_related("faces")
    if not video_frames:
        captures = captures.filter(video__isnull=True)
    faces = Face.objects.filter(capture=OuterRef("pk"))
    if label:
        faces = faces.filter(predicted_label=label)
    if reviewed is not None:
        faces = faces.filter(true_label__isnull=not reviewed)
    if correct is not None:
        faces = faces.filter(is_correct=correct)
    if label or reviewed is not None or correct is not None:
        captures = captures.filter(Exists(faces))
    return captures.order_by("-created_at", "-id")


def capture_detail(*, user: User, capture_id: int) -> Capture | None:
    return (
        captures_visible_to(user)
        .select_related("model_version", "video")
        .prefetch_related("faces__reviewed_by")
        .filter(pk=capture_id)
        .first()
    )


def active_model_version() -> ModelVersion | None:
    """The model version that predicts new faces: one indexed query, cheap enough for every request."""
    return ModelVersion.objects.filter(state=ModelVersion.State.ACTIVE).first()


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("parent").order_by("-created_at")


def model_activation_list() -> QuerySet[ModelActivation]:
    """Every activation, newest first: which version, in place of which, how, by whom and when."""
    return ModelActivation.objects.select_related("model_version", "replaced", "activated_by", "training_job")


def training_job_list() -> QuerySet[TrainingJob]:
    return TrainingJob.objects.select_related("requested_by", "base_version", "model_version")


def model_versions_with_problems() -> QuerySet[ModelVersion]:
    """Versions whose folder is missing or could not be loaded, newest first."""
    return ModelVersion.objects.exclude(problem="").order_by("-created_at")


@dataclass(frozen=True)
class ClassScore:
    precision: float | None  # None when the model never predicted this label among reviewed faces
    recall: float | None  # None when no reviewed face truly shows this label
    support: int  # reviewed faces whose true label is this one


@dataclass(frozen=True)
class DayAccuracy:
    day: date  # the day the faces were captured (and predicted)
    reviewed: int
    correct: int
    accuracy: float | None


@dataclass(frozen=True)
class ModelVersionAccuracy:
    version: str
    state: str
    reviewed: int
    correct: int
    unreviewed: int
    accuracy: float | None


@dataclass(frozen=True)
class AccuracySummary:
    reviewed: int
    correct: int
    unreviewed: int
    accuracy: float | None  # over reviewed faces; None before the first review
    per_class: dict[str, ClassScore]
    labels: tuple[str, ...]
    confusion: list[list[int]]  # confusion[true][predicted], both in `labels` order
    by_day: list[DayAccuracy]
    by_model_version: list[ModelVersionAccuracy]


def accuracy_summary(*, user: User | None, since: date | None = None) -> AccuracySummary:
    """Accuracy over reviewed faces: the user's own faces, or the whole site's when user is None.

    Three grouped queries whatever the number of faces; Python only reshapes their few rows.
    """
    faces = Face.objects.all() if user is None else faces_visible_to(user)
    if since is not None:
        faces = faces.filter(created_at__gte=timezone.make_aware(datetime.combine(since, time.min)))

    # 1. The confusion matrix, with unreviewed faces as the rows whose true label is null.
    index = {label: position for position, label in enumerate(EXPRESSIONS)}
    confusion = [[0] * len(EXPRESSIONS) for _ in EXPRESSIONS]
    unreviewed = 0
    pairs = faces.order_by().values_list("true_label", "predicted_label").annotate(count=Count("id"))
    for true_label, predicted_label, count in pairs:
        if true_label is None:
            unreviewed += count
        else:
            confusion[index[true_label]][index[predicted_label]] += count

    # 2. Per day of capture (UTC, the site's TIME_ZONE). Cast is SQLite's C `date()`, where TruncDate calls
    # back into Python for every row: 25 ms instead of 115 ms over 20,000 faces (bench/bench_site.py).
    reviewed_faces = faces.filter(true_label__isnull=False)
    by_day = [
        DayAccuracy(day=row["day"], reviewed=row["reviewed"], correct=row["correct"], accuracy=_ratio(row))
        for row in reviewed_faces.annotate(day=Cast("created_at", DateField()))
        .values("day")
        .annotate(reviewed=Count("id"), correct=Count("id", filter=Q(is_correct=True)))
        .order_by("day")
    ]

    # 3. Per model version.
    by_model_version = [
        ModelVersionAccuracy(
            version=row["model_version__version"],
            state=row["model_version__state"],
            reviewed=row["reviewed"],
            correct=row["correct"],
            unreviewed=row["unreviewed"],
            accuracy=_ratio(row),
        )
        for row in faces.values("model_version__version", "model_version__state", "model_version__created_at")
        .annotate(
            reviewed=Count("id", filter=Q(true_label__isnull=False)),
            correct=Count("id", filter=Q(is_correct=True)),
            unreviewed=Count("id", filter=Q(true_label__isnull=True)),
        )
        .order_by("model_version__created_at")
    ]

    reviewed = sum(map(sum, confusion))
    correct = sum(confusion[position][position] for position in range(len(EXPRESSIONS)))
    per_class = {}
    for position, label in enumerate(EXPRESSIONS):
        true_count = sum(confusion[position])
        predicted_count = sum(row[position] for row in confusion)
        hits = confusion[position][position]
        per_class[label] = ClassScore(
            precision=hits / predicted_count if predicted_count else None,
            recall=hits / true_count if true_count else None,
            support=true_count,
        )
    return AccuracySummary(
        reviewed=reviewed,
        correct=correct,
        unreviewed=unreviewed,
        accuracy=correct / reviewed if reviewed else None,
        per_class=per_class,
        labels=EXPRESSIONS,
        confusion=confusion,
        by_day=by_day,
        by_model_version=by_model_version,
    )


def _ratio(row: dict) -> float | None:
    return row["correct"] / row["reviewed"] if row["reviewed"] else None


def reviewed_face_counts() -> dict[str, int]:
    """How many reviewed faces there are of each expression, in EXPRESSIONS order."""
    counts = dict(
        Face.objects.filter(reviewed_at__isnull=False)
        .values_list("true_label")
        .annotate(count=Count("id"))
        .values_list("true_label", "count")
    )
    return {label: counts.get(label, 0) for label in EXPRESSIONS}


def retrain_refusal(counts: dict[str, int]) -> str | None:
    """Why these reviewed faces are too few to retrain on, or None when they are enough.

    Any mix of expressions will do: one missing from the reviews is covered by the reference data,
    when configured, or kept as the base version has it (ml.train leaves it out of the loss).
    """
    minimum = settings.EMOTIONSITE_RETRAIN.min_faces
    if sum(counts.values()) >= minimum:
        return None
    present = ", ".join(f"{label} {count}" for label, count in counts.items() if count)
    return f"Retraining needs at least {minimum} reviewed faces; there are {sum(counts.values())}" + (
        f" ({present})." if present else "."
    )


def media_problem(name: str = "") -> str | None:
    """Why files cannot be written to or removed from the media folder that holds `name` (the media folder
    itself by default), or None when they can: what the upload, the delete and /healthz check.

    Only reads: the process's own permissions on the folder, or on the nearest folder above that exists
    (saving makes the missing ones). A storage that is not a local folder is not checked here.
    """
    try:
        path = Path(default_storage.path(name))
    except NotImplementedError:
        return None
    folder = path.parent if name else path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK, effective_ids=True):
        return f"{folder} is not writable by this process"
    return None


@dataclass(frozen=True)
class MediaFile:
    name: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class OrphanFiles:
    """The media folder's files that no capture points to, older than the minimum age; and how many were
    younger (left alone: an upload writes its files before its rows are committed) or looked at in all."""

    orphans: list[MediaFile]
    recent: int
    checked: int


def orphan_media_files(*, min_age: timedelta) -> OrphanFiles:
    """Every file in the media storage that no capture's image or thumbnail, nor video, names, and that is
    older than `min_age`; the frames of a video being read are left (their captures come at its end). The
    files are listed before the names are read, so a capture committed meanwhile is known."""
    files = [
        MediaFile(name, default_storage.size(name), default_storage.get_modified_time(name))
        for name in media_file_names("")
    ]
    # A video being read stores its frames before their captures are committed, all at the end. Read before
    # the names: a video finishing in between has its captures committed by the time those are read.
    being_read = tuple(f"{video.frames_folder}/" for video in Video.objects.filter(state__in=Video.UNFINISHED))
    named = {name for pair in Capture.objects.values_list("image", "thumbnail").iterator() for name in pair}
    named |= set(Video.objects.values_list("file", flat=True))
    cutoff = timezone.now() - min_age
    unnamed = [file for file in files if file.name not in named and not file.name.startswith(being_read)]
    orphans = [file for file in unnamed if file.modified < cutoff]
    return OrphanFiles(orphans=orphans, recent=len(unnamed) - len(orphans), checked=len(files))


def media_file_names(folder: str) -> list[str]:
    """Every file under `folder` of the media storage, by name; none when it does not exist."""
    try:
        folders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return []
    prefix = f"{folder}/" if folder else ""
    return [prefix + name for name in sorted(files)] + [
        name for subfolder in sorted(folders) for name in media_file_names(prefix + subfolder)
    ]


def worker_last_heartbeat() -> datetime | None:
    """When a background worker last said it was alive; None when none has (or every one has stopped)."""
    return WorkerHeartbeat.objects.aggregate(last=Max("beat_at"))["last"]


def videos_visible_to(user: User) -> QuerySet[Video]:
    """The user's own videos (staff included: a video, like a photo, is its owner's)."""
    if not user.is_authenticated:
        return Video.objects.none()
    return Video.objects.filter(owner=user)


def video_list(*, user: User) -> QuerySet[Video]:
    """The user's videos, newest first, with how many faces and tracks were found in each."""
    return (
        videos_visible_to(user)
        .select_related("model_version")
        .annotate(face_count=Count("frames__faces"), track_count=Count("frames__faces__track", distinct=True))
        .order_by("-created_at", "-id")
    )


def video_frame_neighbours(capture: Capture) -> tuple[Capture | None, Capture | None]:
    """A video frame's previous and next stored frames (those with a face), for stepping through them."""
    frames = Capture.objects.filter(video_id=capture.video_id)
    return (
        frames.filter(video_time__lt=capture.video_time).order_by("-video_time").first(),
        frames.filter(video_time__gt=capture.video_time).order_by("video_time").first(),
    )


@dataclass(frozen=True)
class TimelinePoint:
    """One face of a track in one sampled frame."""

    time: float  # seconds from the video's start
    face: int
    capture: int  # the frame's capture, whose page shows the frame with its boxes
    box: tuple[int, int, int, int]
    predicted_label: str
    confidence: float
    probabilities: dict[str, float]
    true_label: str | None
    is_correct: bool | None


@dataclass(frozen=True)
class Track:
    """One face followed through the video (classifier.videos.FaceTracker), frame by frame."""

    number: int
    points: list[TimelinePoint]

    @property
    def first_time(self) -> float:
        return self.points[0].time

    @property
    def last_time(self) -> float:
        return self.points[-1].time

    @property
    def label_shares(self) -> list[tuple[str, float]]:
        """Each expression predicted in the track with its share of the track's frames, most frequent first."""
        counts = Counter(point.predicted_label for point in self.points)
        return [(label, count / len(self.points)) for label, count in counts.most_common()]


def video_timeline(video: Video) -> list[Track]:
    """The video's faces by track, each track in time order: the emotion timeline. Read from the stored
    faces, so a review shows in it, and a video not read through has none."""
    rows = (
        Face.objects.filter(capture__video=video)
        .order_by("track", "capture__video_time", "number")
        .values_list(
            "track",
            "capture__video_time",
            "id",
            "capture_id",
            "box_x",
            "box_y",
            "box_width",
            "box_height",
            "predicted_label",
            "confidence",
            "probabilities",
            "true_label",
            "is_correct",
        )
    )
    tracks: dict[int, list[TimelinePoint]] = {}
    for track, seconds, face, capture, x, y, width, height, *reading in rows:
        label, confidence, probabilities, true_label, correct = reading
        tracks.setdefault(track, []).append(
            TimelinePoint(
                time=seconds,
                face=face,
                capture=capture,
                box=(x, y, width, height),
                predicted_label=label,
                confidence=confidence,
                probabilities=probabilities,
                true_label=true_label,
                is_correct=correct,
            )
        )
    return [Track(number=number, points=points) for number, points in tracks.items()]
