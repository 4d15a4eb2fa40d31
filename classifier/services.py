"""Every write of the product: captures, reviews, model versions. Pages, API, admin and commands call these."""

import hashlib
import logging
import math
import os
import shutil
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, ProtectedError
from django.utils import timezone
from PIL import Image

from accounts.models import User
from classifier import images, inference, selectors, videos
from classifier.images import ImageRefused
from classifier.inference import ModelUnavailable
from classifier.models import (
    IDEMPOTENCY_KEY_HOURS,
    IDEMPOTENCY_KEY_LIFETIME,
    Capture,
    CaptureIdempotencyKey,
    Expression,
    Face,
    ModelActivation,
    ModelVersion,
    TrainingJob,
    Video,
    WorkerHeartbeat,
)
from classifier.videos import VideoRefused
from ml.faces import FaceFinding, FoundFace, find_faces
from ml.labels import EXPRESSIONS
from ml.model_folder import METADATA_FILE, ModelFolderError, read_metadata

if TYPE_CHECKING:
    from ml.predictor import Predictor

__all__ = [
    "ActivationRefused",
    "CancelRefused",
    "DeleteRefused",
    "IdempotencyKeyReused",
    "ImageRefused",
    "MediaUnavailable",
    "ModelUnavailable",
    "NoModelVersion",
    "RetrainRefused",
    "VideoRefused",
    "capture_create",
    "capture_delete",
    "face_review",
    "user_delete",
    "video_create",
    "video_delete",
]

logger = logging.getLogger(__name__)


class ActivationRefused(ModelUnavailable):
    """A version that cannot be made active (its folder is missing); the message says which and why."""


class AlreadyActive(ActivationRefused):
    """The version asked to be activated is the active one already, and nothing is wrong with it."""

    @classmethod
    def of(cls, model_version: ModelVersion) -> "AlreadyActive":
        # The confirmation page says the same before anything is asked, so the words live here, once.
        return cls(f"{model_version} is already the active model version.")

    @staticmethod
    def applies_to(model_version: ModelVersion) -> bool:
        return model_version.state == ModelVersion.State.ACTIVE and not model_version.problem


class NoModelVersion(ModelUnavailable):
    """No model version is registered and none can be found in EMOTIONSITE_MODEL_DIR."""


@dataclass(frozen=True)
class ImagePrediction:
    """What the site reads in one image, before anything is stored."""

    picture: Image.Image  # checked, upright, 8-bit, without metadata
    model_version: ModelVersion
    finding: FaceFinding
    probabilities: np.ndarray  # (faces, 7), EXPRESSIONS order


def image_predict(*, image: UploadedFile) -> ImagePrediction:
    """Check and clean the image, find its faces and classify them, storing nothing.

    Raises ImageRefused (a message for the person) or ModelUnavailable (no model version can predict).
    """
    picture = images.open_upload(
        image,
        size=image.size,
        max_bytes=settings.EMOTIONSITE_MAX_UPLOAD_BYTES,
        max_pixels=settings.EMOTIONSITE_MAX_PIXELS,
        max_decoded_bytes=settings.EMOTIONSITE_MAX_DECODED_BYTES,
        max_picture_pixels=settings.EMOTIONSITE_MAX_PICTURE_PIXELS,
    )
    model_version, predictor = active_predictor()
    finding = find_faces(picture)
    if finding.faces:
        probabilities = predictor.predict(np.stack([face.crop for face in finding.faces]))
    else:
        probabilities = np.empty((0, len(EXPRESSIONS)), np.float32)
    return ImagePrediction(picture, model_version, finding, probabilities)


def capture_create(
    *,
    owner: User,
    image: UploadedFile,
    source: Capture.Source = Capture.Source.UPLOAD,
    idempotency_key: str | None = None,
) -> Capture:
    """Read the image as `image_predict` does and store it all: the image, its faces, their predictions;
    or refuse and store nothing. Raises what `image_predict` raises.

    With an `idempotency_key` (the API's Idempotency-Key header), the same request again by the same owner
    within IDEMPOTENCY_KEY_LIFETIME gets the capture the first one made, even when both come at once (the
    database keeps one: the other's rows and files are dropped); another request under that key raises
    IdempotencyKeyReused.
    """
    keyed = _KeyedRequest(owner, idempotency_key, image, source) if idempotency_key is not None else None
    if keyed is not None and (earlier := keyed.earlier_capture()) is not None:
        return earlier
    try:
        return _capture_store(owner, image_predict(image=image), source, keyed)
    except IntegrityError:
        # A request with the same key committed first.
        if keyed is None or (earlier := keyed.earlier_capture()) is None:
            raise
        return earlier


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key already used for another request (another image or source) by the same user."""


class _KeyedRequest:
    """A capture request under an Idempotency-Key: the capture that key made, and a record of the one made now."""

    def __init__(self, owner: User, key: str, image: UploadedFile, source: str):
        self.owner, self.key = owner, key
        digest = hashlib.sha256(source.encode() + b"\0")
        for chunk in image.chunks():
            digest.update(chunk)
        image.seek(0)
        self.request_sha256 = digest.hexdigest()

    def earlier_capture(self) -> Capture | None:
        """The capture this key made within its lifetime; IdempotencyKeyReused if it was for another request."""
        cutoff = timezone.now() - IDEMPOTENCY_KEY_LIFETIME
        used = (
            CaptureIdempotencyKey.objects.select_related("capture__model_version")
            .filter(owner=self.owner, key=self.key, created_at__gte=cutoff)
            .first()
        )
        if used is None:
            return None
        if used.request_sha256 != self.request_sha256:
            raise IdempotencyKeyReused(
                f"This Idempotency-Key was used for another request (another image or source) in the last "
                f"{IDEMPOTENCY_KEY_HOURS} hours: send a new key with a new request."
            )
        return used.capture

    def record(self, capture: Capture) -> None:
        """In the capture's transaction: IntegrityError when a request with this key committed first."""
        expired = CaptureIdempotencyKey.objects.filter(
            owner=self.owner, created_at__lt=timezone.now() - IDEMPOTENCY_KEY_LIFETIME
        )
        expired.delete()
        CaptureIdempotencyKey.objects.create(
            owner=self.owner, key=self.key, request_sha256=self.request_sha256, capture=capture
        )


def _capture_store(
    owner: User, prediction: ImagePrediction, source: Capture.Source, keyed: _KeyedRequest | None
) -> Capture:
    picture, model_version, finding, probabilities = (
        prediction.picture,
        prediction.model_version,
        prediction.finding,
        prediction.probabilities,
    )

    folder = _capture_folder(owner)
    name = uuid.uuid4().hex
    # The files are written before the rows are committed, and removed again if the rows are not: no row
    # ever lacks its file. A process killed in between leaves files no row points to (remove_orphan_files).
    stored = []
    try:
        stored.append(_media_save(f"{folder}/{name}.jpg", images.encode_jpeg(picture)))
        thumbnail_bytes = images.encode_jpeg(images.thumbnail(picture), quality=images.THUMBNAIL_JPEG_QUALITY)
        stored.append(_media_save(f"{folder}/{name}-thumbnail.jpg", thumbnail_bytes))
        now = timezone.now()
        with transaction.atomic():
            capture = Capture.objects.create(
                owner=owner,
                source=source,
                image=stored[0],
                thumbnail=stored[1],
                width=picture.width,
                height=picture.height,
                whole_image=finding.whole_image,
                model_version=model_version,
                created_at=now,
            )
            Face.objects.bulk_create(
                _face(capture, model_version, number, found, scores, now)
                for number, (found, scores) in enumerate(zip(finding.faces, probabilities, strict=True), start=1)
            )
            if keyed is not None:
                keyed.record(capture)
    except BaseException:
        media_files_remove(stored)
        raise
    return capture


def face_reading(scores: np.ndarray) -> dict:
    """A face's seven probabilities as stored and sent: the predicted label, its confidence, all seven."""
    best = int(np.argmax(scores))
    return {
        "predicted_label": EXPRESSIONS[best],
        # float32 softmax can round a hair above 1.
        "confidence": min(1.0, float(scores[best])),
        "probabilities": {label: round(float(score), 6) for label, score in zip(EXPRESSIONS, scores, strict=True)},
    }


def _face(
    capture: Capture, model_version: ModelVersion, number: int, found: FoundFace, scores: np.ndarray, now: datetime
) -> Face:
    x, y, width, height = (int(value) for value in found.box)
    return Face(
        capture=capture,
        model_version=model_version,
        number=number,
        box_x=x,
        box_y=y,
        box_width=width,
        box_height=height,
        crop=found.crop.tobytes(),
        created_at=now,
        **face_reading(scores),
    )


def capture_delete(*, capture: Capture) -> None:
    """Delete the capture, its faces and, once that is committed, its files.

    In that order, so that no row ever lacks its file: should removing a file fail after the commit, the file
    is left with no row pointing to it, which `manage.py remove_orphan_files` finds. A folder the files cannot
    be removed from is found before anything is deleted: MediaUnavailable, and the capture stays as it was.
    """
    names = [name for name in (capture.image.name, capture.thumbnail.name) if name]
    _media_check_removable(names, refusal=MediaUnavailable.DELETE)
    capture.delete()
    transaction.on_commit(lambda: media_files_remove(names))


def user_delete(*, user: User) -> None:
    """Delete the user with their captures, faces and videos and, once that is committed, every file of theirs.

    The user's row is locked before their captures are read, in the transaction that deletes them: an upload
    of theirs that commits first is deleted with the rest (PostgreSQL: the lock waits for it; SQLite: the
    transaction holds the write lock from its start), and one that commits after is refused (its owner is
    gone) and removes its own files. After the commit their folder is emptied as well, of files that no
    row named (an upload still on its way, or one whose process was killed), and removed.
    Raises MediaUnavailable, and deletes nothing, when their files cannot be removed.
    """
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).exists()  # the lock; the answer is not needed
        names = [name for pair in user.captures.values_list("image", "thumbnail") for name in pair if name]
        video_names = list(user.videos.values_list("file", flat=True))
        _media_check_removable([*names, *video_names], refusal=MediaUnavailable.DELETE_ACCOUNT)
        folder, video_folder = _capture_folder(user), _video_folder(user)
        user.delete()
        transaction.on_commit(lambda: media_files_remove([*names, *selectors.media_file_names(folder), folder]))
        # Their videos' folder, with every frames folder in it (frames are captures too, named above).
        transaction.on_commit(lambda: media_folder_remove(video_folder))


def _capture_folder(owner: User) -> str:
    """Where an owner's captures are stored: theirs alone (ids are never reused)."""
    return f"captures/{owner.pk}"


class MediaUnavailable(Exception):
    """Files cannot be written to or removed from the media folder right now, so nothing was changed.

    The message is for the person; the log names the folder and the error.
    """

    UPLOAD = (
        "Photos cannot be stored right now (the server's media folder is not writable); nothing was stored. "
        "Try again later."
    )
    DELETE = (
        "The capture cannot be deleted right now (the server's media folder is not writable); it is kept as it "
        "was. Try again later."
    )
    DELETE_ACCOUNT = (
        "The account cannot be deleted right now (the server's media folder is not writable); it is kept as it "
        "was. Try again later."
    )
    UPLOAD_VIDEO = (
        "Videos cannot be stored right now (the server's media folder is not writable); nothing was stored. "
        "Try again later."
    )
    VIDEO_FRAMES = (
        "The video's frames could not be stored (the server's media folder is not writable); nothing of it "
        "was kept. Delete the video, and upload it again later."
    )
    DELETE_VIDEO = (
        "The video cannot be deleted right now (the server's media folder is not writable); it is kept as it "
        "was. Try again later."
    )


def _media_save(name: str, content: bytes | File, *, refusal: str = MediaUnavailable.UPLOAD) -> str:
    try:
        return default_storage.save(name, content if isinstance(content, File) else ContentFile(content))
    except OSError as error:
        logger.error("Cannot write %s in the media folder: %s", name, error)
        raise MediaUnavailable(refusal) from error


def _media_check_removable(names: list[str], *, refusal: str) -> None:
    one_per_folder = {os.path.dirname(name): name for name in names}.values()
    for name in one_per_folder:
        if (problem := selectors.media_problem(name)) is not None:
            logger.error("Cannot remove %s from the media folder: %s", name, problem)
            raise MediaUnavailable(refusal)


def media_files_remove(names: list[str]) -> None:
    """Remove these files of the media storage; one that cannot be removed is logged and left (an orphan file
    for `manage.py remove_orphan_files` to find later)."""
    for name in names:
        try:
            default_storage.delete(name)
        except OSError as error:
            logger.error("Cannot remove %s from the media folder (left as an orphan file): %s", name, error)


def media_folder_remove(folder: str) -> None:
    """Remove a folder of the media storage with everything in it, as media_files_remove removes files;
    nothing when there is no such folder."""
    try:
        folders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    media_files_remove([f"{folder}/{name}" for name in files])
    for name in folders:
        media_folder_remove(f"{folder}/{name}")
    media_files_remove([folder])


def face_review(*, face: Face, reviewer: User, true_label: Expression | str | None) -> Face:
    """Record a person's verdict on a face: its true expression (None withdraws the review)."""
    if true_label is None:
        face.true_label, face.is_correct, face.reviewed_by, face.reviewed_at = None, None, None, None
    else:
        face.true_label = Expression(true_label).value
        face.is_correct = face.true_label == face.predicted_label
        face.reviewed_by = reviewer
        face.reviewed_at = timezone.now()
    face.save(update_fields=["true_label", "is_correct", "reviewed_by", "reviewed_at"])
    return face


def face_review_from_queue(*, face: Face, reviewer: User, true_label: Expression | str) -> Face | None:
    """Review a face offered by the review queue, unless someone reviewed it since it was offered (several
    reviewers see the same least-confident faces): then nothing changes and None comes back."""
    with transaction.atomic():
        unreviewed = Face.objects.select_for_update().filter(pk=face.pk, reviewed_at__isnull=True).first()
        if unreviewed is None:
            return None
        return face_review(face=unreviewed, reviewer=reviewer, true_label=true_label)


def face_review_undo(*, face_id: int, reviewer: User, reviewed_at: datetime) -> bool:
    """Withdraw this reviewer's review made at `reviewed_at`, unless it has been changed since (by anyone)."""
    return bool(
        Face.objects.filter(pk=face_id, reviewed_by=reviewer, reviewed_at=reviewed_at).update(
            true_label=None, is_correct=None, reviewed_by=None, reviewed_at=None
        )
    )


def active_predictor() -> "tuple[ModelVersion, Predictor]":
    """The active model version and its loaded Predictor.

    When the active version cannot be loaded (its folder is gone or corrupt), that is recorded as its
    problem and the last good version takes over, so one broken folder does not fail every request.
    Raises ModelUnavailable when no version can predict.
    """
    while True:
        model_version = active_model_version_ensured()
        if model_version is None:
            raise NoModelVersion(f"No model version is active and none was found in {settings.EMOTIONSITE_MODEL_DIR}.")
        try:
            return model_version, inference.predictor_for(model_version)
        except ModelUnavailable as error:
            # Each turn marks one more version broken, so this ends.
            if model_version_fail(model_version=model_version, problem=str(error)) is None:
                raise


def model_version_fail(*, model_version: ModelVersion, problem: str) -> ModelVersion | None:
    """Record why this version cannot be used; if it was active, activate the last good version instead.

    Returns the version now active in its place, or None when it was not active or no other can take over.
    """
    model_version.problem = problem
    model_version.save(update_fields=["problem"])
    if model_version.state != ModelVersion.State.ACTIVE:
        return None
    fallback = _last_good_version(Path(settings.EMOTIONSITE_MODEL_DIR), besides=model_version)
    if fallback is None:
        logger.error("Model version %s cannot be used (%s) and no other version can take over", model_version, problem)
        return None
    logger.error("Model version %s cannot be used (%s); falling back to %s", model_version, problem, fallback)
    return model_version_activate(model_version=fallback, reason=ModelActivation.Reason.FALLBACK)


def _last_good_version(model_dir: Path, *, besides: ModelVersion | None = None) -> ModelVersion | None:
    """The version that served last, else the newest, that is neither rejected nor known broken and has its folder."""
    usable = (
        ModelVersion.objects.exclude(state=ModelVersion.State.REJECTED)
        .filter(problem="")
        .order_by(F("activated_at").desc(nulls_last=True), "-created_at")
    )
    if besides is not None:
        usable = usable.exclude(pk=besides.pk)
    return next((version for version in usable if _folder_exists(version, model_dir)), None)


def active_model_version_ensured() -> ModelVersion | None:
    """The active model version; when there is none, the model folders are registered first (on a fresh site)."""
    model_version = selectors.active_model_version()
    if model_version is None:
        model_versions_register()
        model_version = selectors.active_model_version()
    return model_version


def model_versions_register(*, model_dir: Path | None = None) -> list[ModelVersion]:
    """Register every model folder in EMOTIONSITE_MODEL_DIR not yet known; activate the newest if none is active,
    or if the active version's folder is gone (say, an upgrade replaced the shipped model).

    Reads only each folder's model.json. Idempotent. Returns the newly registered versions.
    """
    model_dir = Path(model_dir or settings.EMOTIONSITE_MODEL_DIR)
    found = []
    if model_dir.is_dir():
        for folder in sorted(model_dir.iterdir()):
            # A name starting with "." is no version: an export still being written, a job's work folder,
            # the kept predictions (classifier.retraining.KEPT_PREDICTIONS_FOLDER).
            if folder.name.startswith(".") or not (folder / METADATA_FILE).is_file():
                continue
            try:
                found.append((folder, read_metadata(folder)))
            except ModelFolderError as error:
                logger.warning("Skipping model folder %s", error)
    registered = []
    with transaction.atomic():
        _model_versions_lock()
        known = set(ModelVersion.objects.values_list("version", flat=True))
        for folder, metadata in found:
            version = metadata["version"]
            if version in known:
                continue
            registered.append(
                ModelVersion.objects.create(
                    version=version,
                    path=_stored_path(folder, model_dir),
                    # A retrained folder carries its verdict; one that lost the promotion stays out of use.
                    state=ModelVersion.State.REJECTED
                    if metadata.get("promoted") is False
                    else ModelVersion.State.CANDIDATE,
                    decision=metadata.get("decision") or "",
                    metrics=metadata.get("metrics") or {},
                    training=metadata.get("training") or {},
                    created_at=_parse_time(metadata.get("created_at")) or timezone.now(),
                    parent=ModelVersion.objects.filter(version=metadata.get("parent") or "").first(),
                )
            )
            known.add(version)
        active = ModelVersion.objects.filter(state=ModelVersion.State.ACTIVE).first()
        if active is not None and not _folder_exists(active, model_dir):
            model_version_fail(model_version=active, problem=f"its folder {model_dir / active.path} is missing")
        elif active is None and (newest := _last_good_version(model_dir)) is not None:
            model_version_activate(model_version=newest, reason=ModelActivation.Reason.REGISTERED)
        elif active is not None and (successor := _newest_successor(active, registered)) is not None:
            # An upgrade that ships a newer version of the active one (v5, made from v4) puts it live;
            # the active version stays, one click away.
            model_version_activate(model_version=successor, reason=ModelActivation.Reason.REGISTERED)
    return registered


# PostgreSQL's advisory lock key (any 64-bit number the site uses for nothing else).
_MODEL_VERSIONS_LOCK_KEY = zlib.crc32(b"emotionsite: registering and activating model versions")


def _model_versions_lock() -> None:
    """Wait for, and hold until the transaction ends, the right to register or activate model versions.

    Several processes run `register_models` at once when several containers start together; on PostgreSQL
    each would see no version registered and insert the same ones, and all but one fail on the unique
    version (or on the one active version), which stops their container. Under this lock they take turns,
    and each one after the first finds the versions known. Two staff activating at once take turns too.
    On SQLite the IMMEDIATE transactions (emotionsite/settings.py) already take turns at BEGIN.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_MODEL_VERSIONS_LOCK_KEY])


def _newest_successor(active: ModelVersion, registered: list[ModelVersion]) -> ModelVersion | None:
    """Of the versions just registered, the newest shipped one made from the active one. A retrained version
    is left out: its job puts it live itself, and one found here lost its job (a worker killed mid-way)."""
    children = [
        version
        for version in registered
        if version.parent_id == active.pk and version.state == "candidate" and "training_job" not in version.training
    ]
    return max(children, key=lambda version: version.created_at, default=None)


def _folder_exists(model_version: ModelVersion, model_dir: Path) -> bool:
    return (model_dir / model_version.path / METADATA_FILE).is_file()


def model_version_activate(
    *,
    model_version: ModelVersion,
    reason: ModelActivation.Reason = ModelActivation.Reason.MANUAL,
    activated_by: User | None = None,
    training_job: TrainingJob | None = None,
) -> ModelVersion:
    """Make this the one active model version, and record how; the one it replaces becomes "previous".

    Every worker loads it on its next prediction (classifier.inference). A problem recorded for it is
    cleared: activating is how staff say the folder has been repaired; if not, it is found again. The
    active version activated again only has its problem cleared, and no activation is recorded, since none
    took place; with no problem, a person's request (MANUAL) raises AlreadyActive, while the site's own
    (a fallback, a registration) finds its work done: another process did it first. Raises
    ActivationRefused when its folder is missing.
    """
    if not _folder_exists(model_version, Path(settings.EMOTIONSITE_MODEL_DIR)):
        raise ActivationRefused(f"{model_version} cannot be activated: its folder {model_version.path} is missing.")
    with transaction.atomic():
        _model_versions_lock()
        model_version.refresh_from_db(fields=["state", "problem"])
        if AlreadyActive.applies_to(model_version):
            if reason == ModelActivation.Reason.MANUAL:
                raise AlreadyActive.of(model_version)
            return model_version
        if model_version.state == ModelVersion.State.ACTIVE:  # with a problem: its folder was repaired
            model_version.problem = ""
            model_version.save(update_fields=["problem"])
            return model_version
        replaced = ModelVersion.objects.filter(state=ModelVersion.State.ACTIVE).exclude(pk=model_version.pk).first()
        if replaced is not None:
            replaced.state = ModelVersion.State.PREVIOUS
            replaced.save(update_fields=["state"])
        model_version.state, model_version.problem = ModelVersion.State.ACTIVE, ""
        model_version.activated_at = timezone.now()
        model_version.save(update_fields=["state", "problem", "activated_at"])
        ModelActivation.objects.create(
            model_version=model_version,
            replaced=replaced,
            reason=reason,
            activated_by=activated_by,
            training_job=training_job,
            activated_at=model_version.activated_at,
        )
    return model_version


class DeleteRefused(Exception):
    """A model version that must not be deleted; the message says why and what to do instead."""

    @classmethod
    def active(cls, model_version: ModelVersion) -> "DeleteRefused":
        # The admin says the same before it asks "Are you sure?", so the words live here, once.
        return cls(
            f"Model version {model_version} is the active one, so it cannot be deleted: "
            "activate another version first, then delete this one."
        )


@dataclass(frozen=True)
class DeletedModelVersion:
    """What model_version_delete did with the version's folder, in words for the admin."""

    version: str
    folder: Path
    folder_removed: bool
    folder_note: str


def model_version_delete(*, model_version: ModelVersion) -> DeletedModelVersion:
    """Delete the version's row and, once that is committed, its folder, so registering cannot bring it back.

    Only a folder inside EMOTIONSITE_MODEL_DIR is removed (a symbolic link there loses only the link);
    a folder elsewhere is left in place. Raises DeleteRefused for the active version, and for a version
    whose faces or captures still name it (on_delete=PROTECT: a prediction keeps the version that made it).
    """
    model_dir = Path(settings.EMOTIONSITE_MODEL_DIR).resolve()
    # "..", if any, is resolved by name; the folder itself is not followed, so a link is seen as a link.
    folder = Path(os.path.normpath(model_dir / model_version.path))
    inside = folder != model_dir and folder.parent.resolve().is_relative_to(model_dir)
    try:
        with transaction.atomic():
            # Read the state afresh, the row locked: the version may have been activated meanwhile.
            state = ModelVersion.objects.select_for_update().filter(pk=model_version.pk).values_list("state").first()
            if state == (ModelVersion.State.ACTIVE,):
                raise DeleteRefused.active(model_version)
            model_version.delete()
    except ProtectedError as error:
        faces, captures = model_version.faces.count(), model_version.captures.count()
        raise DeleteRefused(
            f"Model version {model_version} cannot be deleted: {captures} captures and {faces} faces were "
            "classified by it, and a prediction keeps the version that made it."
        ) from error

    version = model_version.version
    if not inside:
        note = f"its folder {folder} is outside EMOTIONSITE_MODEL_DIR ({model_dir}) and was left in place"
        return DeletedModelVersion(version=version, folder=folder, folder_removed=False, folder_note=note)
    if not (folder.is_symlink() or folder.is_dir()):
        note = f"it had no folder at {folder}"
        return DeletedModelVersion(version=version, folder=folder, folder_removed=False, folder_note=note)
    transaction.on_commit(lambda: _model_folder_remove(folder))
    note = f"its folder {folder} was removed"
    return DeletedModelVersion(version=version, folder=folder, folder_removed=True, folder_note=note)


def _model_folder_remove(folder: Path) -> None:
    try:
        if folder.is_symlink():
            folder.unlink()
            return
        # Hidden first, in one step: registering skips names starting with ".", even if removing fails halfway.
        hidden = folder.with_name(f".deleted-{folder.name}-{uuid.uuid4().hex[:8]}")
        os.replace(folder, hidden)
        shutil.rmtree(hidden)
    except OSError:
        logger.exception("The folder %s of a deleted model version could not be removed", folder)


def _stored_path(folder: Path, model_dir: Path) -> str:
    try:
        return str(folder.relative_to(model_dir))
    except ValueError:
        return str(folder.resolve())


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


class RetrainRefused(Exception):
    """A retraining request that cannot be done now; the message says why, for the person asking."""


class CancelRefused(Exception):
    """A cancel request for a job that has already ended; the message says how it ended."""


def retrain_request(
    *, requested_by: User, base_version: ModelVersion | None = None, use_reference_data: bool = True
) -> TrainingJob:
    """Queue a job that fine-tunes `base_version` (default: the active one); or refuse, saying why.

    The reference data set is mixed in when it is configured and `use_reference_data` is true.
    """
    training_jobs_fail_stale()
    base_version = base_version or selectors.active_model_version()
    if base_version is None:
        raise RetrainRefused("No model version is active, so there is nothing to fine-tune.")
    if base_version.problem:
        raise RetrainRefused(f"{base_version} cannot be loaded ({base_version.problem}); choose another version.")
    refusal = selectors.retrain_refusal(selectors.reviewed_face_counts())
    if refusal:
        raise RetrainRefused(refusal)
    retrain = settings.EMOTIONSITE_RETRAIN
    reference_data = settings.EMOTIONSITE_REFERENCE_DATA if use_reference_data else None
    options = {
        "epochs": retrain.epochs,
        "batch_size": retrain.batch_size,
        "learning_rate": retrain.learning_rate,
        "frozen_stages": retrain.frozen_stages,
        "parent_share": retrain.parent_share,
        "class_weight_power": retrain.class_weight_power,
        "promotion_margin": retrain.promotion_margin,
        "reference_margin": retrain.reference_margin,
        "reference_data": str(reference_data) if reference_data else None,
        "reference_images": retrain.reference_images if reference_data else 0,
    }
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(requested_by=requested_by, base_version=base_version, options=options)
    except IntegrityError:
        unfinished = TrainingJob.objects.filter(state__in=TrainingJob.UNFINISHED).first()
        what = f"Training job {unfinished.pk} is {unfinished.state}" if unfinished else "Another job was just requested"
        raise RetrainRefused(f"{what}: one job runs at a time. Wait for it to end, or cancel it.") from None

    from classifier.tasks import retrain

    transaction.on_commit(lambda: retrain.enqueue(job.pk))
    return job


def training_job_cancel(*, job: TrainingJob) -> TrainingJob:
    """Cancel a queued job at once; ask a running one to stop (it does within a second or two). A running job
    whose worker stopped has failed: it is marked so (the stale rule), and the cancel refused."""
    training_jobs_fail_stale()
    if TrainingJob.objects.filter(pk=job.pk, state=TrainingJob.State.QUEUED).update(
        state=TrainingJob.State.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    ):
        job.refresh_from_db()
        return job
    if not TrainingJob.objects.filter(pk=job.pk, state=TrainingJob.State.RUNNING).update(cancel_requested=True):
        job.refresh_from_db()
        how = {
            TrainingJob.State.SUCCEEDED: "it succeeded",
            TrainingJob.State.FAILED: "it failed",
            TrainingJob.State.CANCELLED: "it was cancelled",
        }
        raise CancelRefused(f"Training job {job.pk} has already ended: {how[job.state]}.")
    job.refresh_from_db()
    return job


def training_jobs_fail_stale() -> list[TrainingJob]:
    """Mark failed the running jobs whose worker has been silent too long (killed, or its machine gone),
    and remove what they left. Writes call it (a retrain request, the worker's next job); reads show such
    a job failed already (TrainingJob.state_now)."""
    cutoff = timezone.now() - timedelta(seconds=settings.EMOTIONSITE_RETRAIN.stale_seconds)
    failed = []
    for job in TrainingJob.objects.filter(state=TrainingJob.State.RUNNING, heartbeat_at__lt=cutoff):
        error = job.worker_stopped_error
        # Only if it is still silent: a worker that wrote in between is alive.
        if TrainingJob.objects.filter(pk=job.pk, state=job.state, heartbeat_at=job.heartbeat_at).update(
            state=TrainingJob.State.FAILED, error=error, finished_at=timezone.now()
        ):
            shutil.rmtree(training_job_work_folder(job), ignore_errors=True)
            failed.append(job)
            logger.warning("Training job %s marked failed: %s", job.pk, error)
    return failed


def training_job_work_folder(job: TrainingJob) -> Path:
    """Where a running job trains and exports: hidden (a name starting with "."), so never registered."""
    return Path(settings.EMOTIONSITE_MODEL_DIR) / f".training-job-{job.pk}"


def worker_heartbeat(*, worker_id: str) -> None:
    """Record that this background worker is alive (it beats every WORKER_HEARTBEAT_EVERY, busy or idle), and
    forget workers silent for a day (killed ones, which could not say goodbye)."""
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(worker_id=worker_id, defaults={"beat_at": now})
    WorkerHeartbeat.objects.filter(beat_at__lt=now - timedelta(days=1)).delete()


def worker_heartbeat_end(*, worker_id: str) -> None:
    """The worker stopped: it no longer counts as alive."""
    WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()


def video_create(*, owner: User, file: UploadedFile, samples_per_second: float | None = None) -> Video:
    """Check the video all through (classifier.videos.probe), store it, privately, and queue it for the
    worker (classifier.tasks.read_video); or refuse it (VideoRefused) and store nothing."""
    limits = settings.EMOTIONSITE_VIDEO
    info = videos.probe(
        file,
        name=file.name or "",
        content_type=file.content_type,
        size=file.size,
        max_bytes=limits.max_bytes,
        max_seconds=limits.max_seconds,
        max_pixels=limits.max_pixels,
    )
    samples_per_second = samples_per_second or limits.samples_per_second
    if info.frame_rate:
        # A video of fewer frames a second than asked for is read frame by frame: at its own rate.
        samples_per_second = min(samples_per_second, info.frame_rate)
    file.seek(0)
    name = _media_save(
        f"{_video_folder(owner)}/{uuid.uuid4().hex}.{info.container.lower()}",
        file,
        refusal=MediaUnavailable.UPLOAD_VIDEO,
    )
    try:
        with transaction.atomic():
            video = Video.objects.create(
                owner=owner,
                file=name,
                name=Path(file.name or "video").name[:255],
                container=info.container,
                codec=info.codec,
                width=info.width,
                height=info.height,
                duration=info.duration,
                frame_rate=info.frame_rate,
                size=file.size,
                samples_per_second=samples_per_second,
                # Every sample time from 0 up to the end, and never more than there are frames.
                samples_total=min(info.frames, math.ceil(info.duration * samples_per_second - videos.TIME_TOLERANCE)),
            )
    except BaseException:
        media_files_remove([name])
        raise

    from classifier.tasks import read_video

    transaction.on_commit(lambda: read_video.enqueue(video.pk))
    return video


def _video_folder(owner: User) -> str:
    """Where an owner's videos are stored, each with its frames folder: theirs alone (ids are never reused)."""
    return f"videos/{owner.pk}"


@dataclass(frozen=True)
class StoredFrame:
    image: str
    thumbnail: str
    width: int
    height: int


def video_frame_save(*, video: Video, time: float, picture: Image.Image) -> StoredFrame:
    """Store one sampled frame, as a capture's image and thumbnail are stored, in the video's frames folder.
    Its capture row comes later, with all the others (video_frames_store)."""
    folder, name = video.frames_folder, f"{round(time * 1000):09d}"
    refusal = MediaUnavailable.VIDEO_FRAMES
    image = _media_save(f"{folder}/{name}.jpg", images.encode_jpeg(picture), refusal=refusal)
    thumbnail_bytes = images.encode_jpeg(images.thumbnail(picture), quality=images.THUMBNAIL_JPEG_QUALITY)
    thumbnail = _media_save(f"{folder}/{name}-thumbnail.jpg", thumbnail_bytes, refusal=refusal)
    return StoredFrame(image=image, thumbnail=thumbnail, width=picture.width, height=picture.height)


@dataclass(frozen=True)
class VideoFrameReading:
    """One sampled frame with faces, as the worker read it: its stored files, its faces in reading order,
    their probabilities and track numbers."""

    time: float
    stored: StoredFrame
    finding: FaceFinding
    probabilities: np.ndarray  # (faces, 7), EXPRESSIONS order
    tracks: list[int]


def video_frames_store(
    *, video: Video, model_version: ModelVersion, frames: list[VideoFrameReading], samples: int
) -> bool:
    """Write every frame's capture and faces and mark the video succeeded, in one transaction; unless the
    video was deleted or marked failed meanwhile (then nothing is written, and False comes back).

    With SQLite the transaction takes the write lock at its start (IMMEDIATE), with PostgreSQL the row
    is locked, so marking the video failed cannot fall in between.
    """
    now = timezone.now()
    with transaction.atomic():
        if not Video.objects.select_for_update().filter(pk=video.pk, state=Video.State.RUNNING).exists():
            return False
        captures = Capture.objects.bulk_create(
            Capture(
                owner_id=video.owner_id,
                source=Capture.Source.VIDEO,
                image=frame.stored.image,
                thumbnail=frame.stored.thumbnail,
                width=frame.stored.width,
                height=frame.stored.height,
                whole_image=frame.finding.whole_image,
                model_version=model_version,
                created_at=now,
                video=video,
                video_time=frame.time,
            )
            for frame in frames
        )
        faces = []
        for capture, frame in zip(captures, frames, strict=True):
            for number, (found, scores, track) in enumerate(
                zip(frame.finding.faces, frame.probabilities, frame.tracks, strict=True), start=1
            ):
                face = _face(capture, model_version, number, found, scores, now)
                face.track = track
                faces.append(face)
        Face.objects.bulk_create(faces, batch_size=500)
        Video.objects.filter(pk=video.pk).update(
            state=Video.State.SUCCEEDED,
            model_version=model_version,
            samples_done=samples,
            samples_total=samples,
            heartbeat_at=now,
            finished_at=now,
        )
    return True


def video_delete(*, video: Video) -> None:
    """Delete the video, its frames' captures and faces and, once that is committed, its file and its frames
    folder with all in it (a worker still reading it may have stored frames no capture names yet).
    Raises MediaUnavailable, and deletes nothing, when the files cannot be removed."""
    name, folder = video.file.name, video.frames_folder
    _media_check_removable([name, f"{folder}/frame.jpg"], refusal=MediaUnavailable.DELETE_VIDEO)
    video.delete()
    transaction.on_commit(lambda: (media_files_remove([name]), media_folder_remove(folder)))


def videos_fail_stale() -> list[Video]:
    """Mark failed the videos whose worker has been silent too long (killed, or its machine gone), and
    remove the frames it had stored. The worker calls it before each video; pages show such a video
    failed already (Video.state_now)."""
    cutoff = timezone.now() - timedelta(seconds=settings.EMOTIONSITE_VIDEO.stale_seconds)
    failed = []
    for video in Video.objects.filter(state=Video.State.RUNNING, heartbeat_at__lt=cutoff):
        # Only if it is still silent: a worker that wrote in between is alive.
        if Video.objects.filter(pk=video.pk, state=video.state, heartbeat_at=video.heartbeat_at).update(
            state=Video.State.FAILED, error=video.worker_stopped_error, finished_at=timezone.now()
        ):
            media_folder_remove(video.frames_folder)
            failed.append(video)
            logger.warning("Video %s marked failed: its worker stopped", video.pk)
    return failed
