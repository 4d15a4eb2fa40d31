"""Retraining from the reviewed faces: request a job, run it in the worker, evaluate it, promote or reject it.

A job's life. `retrain_request` (the staff page, the API, the admin) stores a queued TrainingJob and
enqueues `classifier.tasks.retrain`. The worker runs `training_job_run`: it fine-tunes the job's base
version on the reviewed faces with `ml.train`, in a hidden folder of EMOTIONSITE_MODEL_DIR (a name
starting with "." is never registered), exports the best epoch there, and evaluates the candidate and
the active version on the same held-out reviewed faces, and on FER2013 PublicTest when reference data
is configured. Only then does the folder move to its final name, immutable, and get its row: active
when it is not worse than the active version by more than the margin, rejected otherwise, with the
numbers either way. A worker killed on the way leaves only the hidden folder, which the next look at
the jobs removes when it marks the job failed.

Paddle is imported inside the worker's functions only: the web processes that request jobs never need it.
"""

import logging
import os
import shutil
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone
from PIL import Image

from accounts.models import User
from classifier import selectors, services
from classifier.inference import model_folder
from classifier.models import Face, ModelVersion, TrainingJob
from ml.data import LabelledImages
from ml.faces import crop_whole_image
from ml.labels import EXPRESSIONS, INDEX_OF, INPUT_SIZE
from ml.model_folder import read_metadata, write_metadata

if TYPE_CHECKING:
    from ml.predictor import Predictor

logger = logging.getLogger(__name__)

# Reviewed faces are split by their capture, so the faces of one photo stay together: a stable hash of
# the capture's id puts 2 in 10 captures in the held-out set (never trained on, the promotion's test),
# 1 in 10 in the validation set (chooses the best epoch), the rest in the training set.
SPLIT_BUCKETS = 10
HELD_OUT_BUCKETS = {0, 1}
VALIDATION_BUCKETS = {2}

HEARTBEAT_SECONDS = 1.0  # how often a running job writes its progress and reads its cancel flag
# How often a running job says it is alive outside training; stale_seconds must be well above it.
HEARTBEAT_THREAD_SECONDS = 30.0


class RetrainRefused(Exception):
    """A retrain or cancel request that cannot be done; the message says why, for the person asking."""


def split_of(capture_id: int) -> str:
    """ "held_out", "validation" or "train": fixed for a capture, whatever else is in the database."""
    bucket = zlib.crc32(f"capture:{capture_id}".encode()) % SPLIT_BUCKETS
    if bucket in HELD_OUT_BUCKETS:
        return "held_out"
    if bucket in VALIDATION_BUCKETS:
        return "validation"
    return "train"


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
    """Why these reviewed faces are too few to retrain on, or None when they are enough."""
    minimum, per_class = settings.EMOTIONSITE_RETRAIN["min_faces"], settings.EMOTIONSITE_RETRAIN["min_faces_per_class"]
    short = [f"{label} {count}" for label, count in counts.items() if count < per_class]
    if sum(counts.values()) >= minimum and not short:
        return None
    return (
        f"Retraining needs at least {minimum} reviewed faces, with {per_class} of each expression; "
        f"there are {sum(counts.values())}" + (f" ({', '.join(short)})." if short else ".")
    )


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
    refusal = retrain_refusal(reviewed_face_counts())
    if refusal:
        raise RetrainRefused(refusal)
    options = {
        key: settings.EMOTIONSITE_RETRAIN[key] for key in ("epochs", "batch_size", "learning_rate", "promotion_margin")
    }
    reference_data = settings.EMOTIONSITE_REFERENCE_DATA if use_reference_data else None
    options |= {
        "reference_data": str(reference_data) if reference_data else None,
        "reference_images": settings.EMOTIONSITE_RETRAIN["reference_images"] if reference_data else 0,
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
    """Cancel a queued job at once; ask a running one to stop (it does within a second or two)."""
    if TrainingJob.objects.filter(pk=job.pk, state=TrainingJob.State.QUEUED).update(
        state=TrainingJob.State.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    ):
        job.refresh_from_db()
        return job
    if not TrainingJob.objects.filter(pk=job.pk, state=TrainingJob.State.RUNNING).update(cancel_requested=True):
        job.refresh_from_db()
        raise RetrainRefused(f"Training job {job.pk} has already {job.state}.")
    job.refresh_from_db()
    return job


def training_jobs_fail_stale() -> list[TrainingJob]:
    """Mark failed the running jobs whose worker has been silent too long (killed, or its machine gone)."""
    cutoff = timezone.now() - timedelta(seconds=settings.EMOTIONSITE_RETRAIN["stale_seconds"])
    failed = []
    for job in TrainingJob.objects.filter(state=TrainingJob.State.RUNNING, heartbeat_at__lt=cutoff):
        error = (
            f"The worker stopped: no sign of life since {job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC. "
            "Nothing it trained was kept; the active model version is unchanged."
        )
        # Only if it is still silent: a worker that wrote in between is alive.
        if TrainingJob.objects.filter(pk=job.pk, state=job.state, heartbeat_at=job.heartbeat_at).update(
            state=TrainingJob.State.FAILED, error=error, finished_at=timezone.now()
        ):
            shutil.rmtree(_work_folder(job), ignore_errors=True)
            failed.append(job)
            logger.warning("Training job %s marked failed: %s", job.pk, error)
    return failed


def _work_folder(job: TrainingJob) -> Path:
    return Path(settings.EMOTIONSITE_MODEL_DIR) / f".training-job-{job.pk}"


@dataclass(frozen=True)
class ReviewedFaces:
    train: LabelledImages
    validation: LabelledImages
    held_out: LabelledImages


def reviewed_faces() -> ReviewedFaces:
    """Every reviewed face's crop and true expression, split by `split_of` its capture."""
    splits = {"train": ([], []), "validation": ([], []), "held_out": ([], [])}
    faces = Face.objects.filter(reviewed_at__isnull=False).select_related("capture").order_by("id")
    for face in faces.iterator(chunk_size=500):
        crops, labels = splits[split_of(face.capture_id)]
        crops.append(face_crop(face))
        labels.append(INDEX_OF[face.true_label])
    return ReviewedFaces(
        **{
            name: LabelledImages(
                np.stack(crops) if crops else np.empty((0, INPUT_SIZE, INPUT_SIZE), np.uint8),
                np.array(labels, np.int64),
            )
            for name, (crops, labels) in splits.items()
        }
    )


def face_crop(face: Face) -> np.ndarray:
    """The crop the model saw; for a face stored before crops were kept, its box cut from the image, unaligned."""
    if face.crop is not None:
        return np.frombuffer(bytes(face.crop), np.uint8).reshape(INPUT_SIZE, INPUT_SIZE)
    with default_storage.open(face.capture.image.name) as file:
        image = Image.open(file)
        image.load()
    x, y, width, height = face.box
    return crop_whole_image(image.crop((x, y, x + width, y + height)))


class JobAbandoned(Exception):
    """The job's row is no longer running (marked failed as stale): its worker must stop and keep nothing."""


class _JobChannel:
    """The running job's link to its row: progress and heartbeat out, the cancel flag in, at most once a second.

    Every write is guarded by the row still being "running": a worker whose job was marked failed
    (a pause longer than stale_seconds) stops instead of writing over the verdict.
    """

    def __init__(self, job: TrainingJob):
        self.job_id = job.pk
        self._last_write = self._last_read = 0.0

    def report(self, progress: dict, *, force: bool = True) -> None:
        if not force and time.monotonic() - self._last_write < HEARTBEAT_SECONDS:
            return
        self._last_write = time.monotonic()
        if not _running(self.job_id).update(progress=progress, heartbeat_at=timezone.now()):
            raise JobAbandoned(f"training job {self.job_id} is no longer running")

    def on_progress(self, progress) -> None:
        figures = {
            "phase": "training",
            "epoch": progress.epoch,
            "epochs": progress.epochs,
            "step": progress.step,
            "steps": progress.steps,
            "loss": round(progress.loss, 4),
            "validation_accuracy": progress.validation_accuracy,
            "seconds_left": round(progress.seconds_left),
            "images_per_second": round(progress.images_per_second, 1),
        }
        self.report(figures, force=progress.epoch == progress.epochs and progress.step == progress.steps)

    def should_stop(self) -> bool:
        if time.monotonic() - self._last_read < HEARTBEAT_SECONDS:
            return False
        self._last_read = time.monotonic()
        return not _running(self.job_id).filter(cancel_requested=False).exists()


class _Heartbeat(threading.Thread):
    """Beats for the job between progress reports too: reading a large data set, exporting, evaluating."""

    def __init__(self, job_id: int):
        super().__init__(name=f"training-job-{job_id}-heartbeat", daemon=True)
        self.job_id = job_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(HEARTBEAT_THREAD_SECONDS):
                _running(self.job_id).update(heartbeat_at=timezone.now())
        except DatabaseError:
            logger.exception("Training job %s: the heartbeat could not be written", self.job_id)
        finally:
            connection.close()  # this thread's own connection


def _running(job_id: int):
    return TrainingJob.objects.filter(pk=job_id, state=TrainingJob.State.RUNNING)


def training_job_run(job_id: int) -> None:
    """Run a queued job to its end (the worker's task): succeeded with a version, failed or cancelled."""
    from ml.train import TrainingStopped

    training_jobs_fail_stale()
    now = timezone.now()
    started = TrainingJob.objects.filter(pk=job_id, state=TrainingJob.State.QUEUED).update(
        state=TrainingJob.State.RUNNING, started_at=now, heartbeat_at=now, progress={"phase": "reading the faces"}
    )
    if not started:
        return  # cancelled before it started, or already run
    job = TrainingJob.objects.select_related("base_version").get(pk=job_id)
    work_folder = _work_folder(job)
    heartbeat = _Heartbeat(job_id)
    heartbeat.start()
    try:
        _train_and_decide(job, work_folder, _JobChannel(job))
    except (TrainingStopped, JobCancelled):
        _running(job_id).update(state=TrainingJob.State.CANCELLED, finished_at=timezone.now())
    except JobAbandoned:
        logger.warning("Training job %s was marked failed while it ran; its work is dropped", job_id)
    except Exception as error:
        logger.exception("Training job %s failed", job_id)
        _running(job_id).update(
            state=TrainingJob.State.FAILED, error=str(error) or type(error).__name__, finished_at=timezone.now()
        )
    finally:
        heartbeat.stopped.set()
        heartbeat.join()
        shutil.rmtree(work_folder, ignore_errors=True)


class JobCancelled(Exception):
    """Cancel was asked after training ended, before the version was kept: nothing is kept."""


def _train_and_decide(job: TrainingJob, work_folder: Path, channel: _JobChannel) -> None:
    from ml.data import read_fer2013_by_usage
    from ml.export import export_run
    from ml.predictor import Predictor
    from ml.train import TrainConfig, train

    options, base_version = job.options, job.base_version
    if base_version is None:
        raise RetrainRefused("The version this job was to fine-tune has been deleted.")
    faces = reviewed_faces()
    for name, split in (("training", faces.train), ("validation", faces.validation), ("held-out", faces.held_out)):
        if len(split) == 0 or (name == "training" and len(split) < options["batch_size"]):
            raise RetrainRefused(
                f"Too few reviewed faces fall in the {name} split ({len(split)}); review more faces first."
            )
    train_set, reference_test = faces.train, None
    if options["reference_data"]:
        channel.report({"phase": "reading the reference data"})
        reference = read_fer2013_by_usage(options["reference_data"], ("Training", "PublicTest"))
        reference_train, reference_test = reference["Training"], reference["PublicTest"]
        sample = np.random.default_rng(job.pk).permutation(len(reference_train))[: options["reference_images"]]
        train_set = LabelledImages.concatenate(
            [train_set, LabelledImages(reference_train.images[sample], reference_train.labels[sample])]
        )

    config = TrainConfig(
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        learning_rate=options["learning_rate"],
        warmup_epochs=0.5,
        seed=job.pk,
        init_from=str(model_folder(base_version)),
    )
    train(
        config,
        train_set,
        faces.validation,
        work_folder / "run",
        on_progress=channel.on_progress,
        should_stop=channel.should_stop,
    )

    channel.report({"phase": "evaluating"})
    version = f"retrained-{timezone.now():%Y%m%d-%H%M%S}-job{job.pk}"
    folder = export_run(work_folder / "run", work_folder / "export", version=version)
    active_version = selectors.active_model_version() or base_version
    threads = len(os.sched_getaffinity(0))
    candidate = Predictor.load(folder, threads=threads)
    active = Predictor.load(model_folder(active_version), threads=threads)
    evaluation = {"held_out": _compare(candidate, active, faces.held_out)}
    if reference_test is not None:
        evaluation["public_test"] = _compare(candidate, active, reference_test)
    promoted, decision = _decide(evaluation, active_version, margin=options["promotion_margin"])

    metadata = read_metadata(folder)
    metadata["metrics"] |= evaluation
    metadata["training"] |= {
        "training_job": job.pk,
        "reviewed_faces": {
            "train": faces.train.class_counts(),
            "validation": faces.validation.class_counts(),
            "held_out": faces.held_out.class_counts(),
        },
        "reference_data": options["reference_data"],
        "reference_images": len(train_set) - len(faces.train),
    }
    # Should the row never be written (the worker killed just after the move), registering the folder
    # later reads its verdict here and keeps a rejected version rejected.
    metadata |= {"promoted": promoted, "decision": decision}
    write_metadata(folder, metadata)
    _keep(job, folder, metadata, base_version)
    logger.info("Training job %s made %s: %s", job.pk, version, decision)


def _keep(job: TrainingJob, folder: Path, metadata: dict, base_version: ModelVersion) -> ModelVersion:
    """Move the version folder to its final name and write its row, activation and the job's end at once;
    unless the job was cancelled or marked failed meanwhile, which the same transaction checks first.

    With SQLite, the transaction takes the write lock at its start (IMMEDIATE), and with PostgreSQL the
    job's row is locked, so the stale check cannot mark the job failed in between.
    """
    final_folder = Path(settings.EMOTIONSITE_MODEL_DIR) / metadata["version"]
    moved = False
    try:
        with transaction.atomic():
            row = TrainingJob.objects.select_for_update().get(pk=job.pk)
            if row.state != TrainingJob.State.RUNNING:
                raise JobAbandoned(f"training job {job.pk} is no longer running")
            if row.cancel_requested:
                raise JobCancelled(f"training job {job.pk} was cancelled")
            os.replace(folder, final_folder)  # the version appears whole, with its evaluation, or not at all
            moved = True
            model_version = ModelVersion.objects.create(
                version=metadata["version"],
                path=metadata["version"],
                state=ModelVersion.State.CANDIDATE if metadata["promoted"] else ModelVersion.State.REJECTED,
                parent=base_version,
                metrics=metadata["metrics"],
                training=metadata["training"],
                decision=metadata["decision"],
            )
            if metadata["promoted"]:
                services.model_version_activate(model_version=model_version)
            TrainingJob.objects.filter(pk=job.pk).update(
                state=TrainingJob.State.SUCCEEDED,
                model_version=model_version,
                progress={"phase": "finished"},
                finished_at=timezone.now(),
            )
    except BaseException:
        if moved:
            shutil.rmtree(final_folder, ignore_errors=True)
        raise
    return model_version


def _compare(candidate: "Predictor", active: "Predictor", data: LabelledImages) -> dict:
    """Both versions' scores on the same faces."""
    from ml.evaluate import evaluate_model

    scores = {"count": len(data), "active_version": active.version}
    for name, predictor in (("candidate", candidate), ("active", active)):
        metrics = evaluate_model(predictor, data)
        scores[name] = {
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "recall": {label: figures["recall"] for label, figures in metrics["per_class"].items()},
        }
    return scores


EVALUATION_NAMES = {"held_out": "held-out reviewed faces", "public_test": "FER2013 PublicTest"}


def _decide(evaluation: dict, active_version: ModelVersion, *, margin: float) -> tuple[bool, str]:
    """Promote only when the candidate is not worse than the active version by more than `margin` anywhere."""
    promoted, findings = True, []
    for key, scores in evaluation.items():
        candidate, active = scores["candidate"]["accuracy"], scores["active"]["accuracy"]
        holds = candidate >= active - margin
        promoted &= holds
        findings.append(
            f"on {scores['count']:,} {EVALUATION_NAMES[key]} {candidate:.1%} against {active:.1%}"
            + ("" if holds else " (worse by more than the margin)")
        )
    verdict = "Activated" if promoted else "Rejected"
    return promoted, (f"{verdict}: accuracy {'; '.join(findings)} for {active_version.version}; margin {margin:.1%}.")
