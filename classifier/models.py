"""Model versions, captures and their faces; what the database can enforce, it does."""

import os
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.utils import timezone

from ml.labels import EXPRESSIONS

Expression = models.TextChoices("Expression", [(label.upper(), label) for label in EXPRESSIONS])
Expression.__doc__ = "The seven expressions, in ml.labels' order."


class ModelVersion(models.Model):
    """One exported model folder. Exactly one is active: it predicts every new face."""

    class State(models.TextChoices):
        ACTIVE = "active", "active"
        PREVIOUS = "previous", "previous (was active)"
        CANDIDATE = "candidate", "candidate (never active)"
        REJECTED = "rejected", "rejected by the gate"

    version = models.CharField(max_length=100, unique=True)
    # Relative to EMOTIONSITE_MODEL_DIR when the folder is inside it, so the data moves with that setting.
    path = models.CharField(max_length=500)
    state = models.CharField(max_length=20, choices=State, default=State.CANDIDATE)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    metrics = models.JSONField(default=dict, blank=True)
    training = models.JSONField(default=dict, blank=True)
    # Why a retrained version was activated or rejected, in words with the numbers.
    decision = models.TextField(blank=True)
    # Set when the folder is missing or cannot be loaded; such a version is never activated on its own.
    problem = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    registered_at = models.DateTimeField(auto_now_add=True)
    # When it last became active: a fallback goes back to the version that served last, not the newest.
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["state"], condition=Q(state="active"), name="one_active_model_version"),
        ]

    def __str__(self) -> str:
        return self.version


class ModelActivation(models.Model):
    """One time a model version became the active one: which, in place of which, how, by whom and when."""

    class Reason(models.TextChoices):
        REGISTERED = "registered", "registered on a site with no active version"
        PROMOTION = "promotion", "promoted by its training job"
        MANUAL = "manual", "activated by hand"
        FALLBACK = "fallback", "fallback: the active version could not be loaded"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="activations")
    replaced = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )
    reason = models.CharField(max_length=20, choices=Reason)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="activations"
    )
    training_job = models.ForeignKey(
        "TrainingJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="activations"
    )
    activated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-activated_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model_version} activated {self.activated_at:%Y-%m-%d %H:%M} ({self.reason})"


class Capture(models.Model):
    """One uploaded or webcam image, or one frame read from a video, stored re-encoded without metadata,
    and the faces found in it."""

    class Source(models.TextChoices):
        UPLOAD = "upload"
        WEBCAM = "webcam"
        VIDEO = "video", "Video frame"

    # What a person may say an image they send is; a video's frames are made by its worker only.
    SENT_SOURCES = [(Source.UPLOAD.value, Source.UPLOAD.label), (Source.WEBCAM.value, Source.WEBCAM.label)]

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="captures")
    source = models.CharField(max_length=10, choices=Source, default=Source.UPLOAD)
    image = models.FileField(max_length=200)
    thumbnail = models.FileField(max_length=200)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # The image was already a tight face crop and was classified whole (its one face's box is the whole image).
    whole_image = models.BooleanField(default=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="captures")
    created_at = models.DateTimeField(default=timezone.now)
    # A video's frame: the video, and the frame's time in seconds from its start.
    video = models.ForeignKey("Video", null=True, blank=True, on_delete=models.CASCADE, related_name="frames")
    video_time = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="capture_owner_created"),
            models.Index(fields=["video", "video_time"], name="capture_video_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(source="video", video__isnull=False, video_time__gte=0)
                | (~Q(source="video") & Q(video__isnull=True, video_time__isnull=True)),
                name="capture_video_frame_has_its_video_and_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Capture {self.pk} by {self.owner}"


class Face(models.Model):
    """One face found in a capture, the model version's prediction for it, and a person's review of it."""

    capture = models.ForeignKey(Capture, on_delete=models.CASCADE, related_name="faces")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="faces")
    # 1, 2, ... in the capture's reading order (ml.faces.reading_order): how pages and the API number faces.
    number = models.PositiveSmallIntegerField(default=1)
    # In a video's frame: 1, 2, ... the same for the same face in every frame where it was followed
    # (classifier.videos.FaceTracker); NULL in a photo.
    track = models.PositiveIntegerField(null=True, blank=True)
    box_x = models.PositiveIntegerField()
    box_y = models.PositiveIntegerField()
    box_width = models.PositiveIntegerField()
    box_height = models.PositiveIntegerField()
    predicted_label = models.CharField(max_length=10, choices=Expression)
    confidence = models.FloatField()
    # The (INPUT_SIZE, INPUT_SIZE) uint8 grey crop the model saw, row by row: what retraining learns from.
    # NULL for faces stored before crops were kept; retraining cuts those from the image by their box.
    crop = models.BinaryField(null=True, editable=False)
    # {label: probability} for all seven, in ml.labels' order.
    probabilities = models.JSONField()
    # The review: the true expression, whether the prediction was right, who said so and when.
    # NULL, not "", is "not reviewed": it keeps the review constraint and the aggregates' grouping plain.
    true_label = models.CharField(max_length=10, choices=Expression, null=True, blank=True)  # noqa: DJ001
    is_correct = models.BooleanField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # The capture's time, copied so the accuracy aggregates need no join.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["capture", "number", "id"]
        # Held by the "reviewers" group: review every user's faces in the review queue, and see those faces.
        permissions = [("review_any_face", "Can review any user's faces in the review queue")]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="face_confidence_is_a_probability"
            ),
            models.CheckConstraint(
                condition=Q(true_label__isnull=True, is_correct__isnull=True, reviewed_at__isnull=True)
                | Q(true_label=F("predicted_label"), is_correct=True, reviewed_at__isnull=False)
                | (
                    Q(is_correct=False, true_label__isnull=False, reviewed_at__isnull=False)
                    & ~Q(true_label=F("predicted_label"))
                ),
                name="face_review_is_consistent",
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="face_created"),
            models.Index(fields=["predicted_label", "true_label"], name="face_labels"),
            # The review queue: unreviewed faces, least confident first.
            models.Index(fields=["reviewed_at", "confidence"], name="face_review_queue"),
        ]

    def __str__(self) -> str:
        return f"Face {self.pk} ({self.predicted_label})"

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.box_x, self.box_y, self.box_width, self.box_height)


# How long an Idempotency-Key on POST /api/v1/captures/ keeps the capture it made: a retry within it gets that
# capture back. Stated in the README and the API schema.
IDEMPOTENCY_KEY_HOURS = 24
IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=IDEMPOTENCY_KEY_HOURS)


class CaptureIdempotencyKey(models.Model):
    """A client's Idempotency-Key on a capture upload, and the capture it made: a retry with the same key (by the
    same user, within IDEMPOTENCY_KEY_LIFETIME) gets that capture instead of storing the photo twice."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of the request's image and source: the same key with another request is refused, not answered.
    request_sha256 = models.CharField(max_length=64)
    capture = models.ForeignKey(Capture, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # What makes two requests at once with one key store one capture: the second's insert fails.
            models.UniqueConstraint(fields=["owner", "key"], name="one_capture_per_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"Idempotency-Key {self.key!r} of {self.owner}"


# How often a background worker (`manage.py db_worker`) says it is alive, busy or idle, and how long a silence
# makes /healthz say it is not: several beats missed, so a slow database does not make a false alarm.
WORKER_HEARTBEAT_EVERY = timedelta(seconds=10)
WORKER_SILENT_AFTER = timedelta(seconds=60)


class WorkerHeartbeat(models.Model):
    """A background worker's last sign of life. django-tasks-db records none for an idle worker, so our
    db_worker command (classifier.management.commands.db_worker) writes one; the row goes when it stops."""

    worker_id = models.CharField(max_length=64, unique=True)
    started_at = models.DateTimeField(default=timezone.now)
    beat_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"Worker {self.worker_id} (last heartbeat {self.beat_at:%Y-%m-%d %H:%M:%S})"


# A job queued this long most likely has no worker to run it.
QUEUED_HINT_AFTER = timedelta(minutes=1)


class RunByTheWorker(models.Model):
    """A row that the background worker runs: its subclass gives a `state` (a State with RUNNING and
    FAILED; UNFINISHED lists the states before the end), `stale_seconds` and `worker_stopped_error`.

    Running, but its worker silent for longer than `stale_seconds` (killed, or its machine gone), it
    reads as failed at once in pages and the API; the next write (a new request, the worker's next
    task) marks it so, with `worker_stopped_error`.
    """

    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # The worker's last sign of life, written as it goes.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def worker_stopped(self) -> bool:
        if self.state != self.State.RUNNING or self.heartbeat_at is None:
            return False
        return self.heartbeat_at < timezone.now() - timedelta(seconds=self.stale_seconds)

    @property
    def state_now(self) -> str:
        """The state, "failed" when its worker stopped, whether or not that is written yet."""
        return self.State.FAILED if self.worker_stopped else self.state

    @property
    def state_now_display(self) -> str:
        return self.State(self.state_now).label

    @property
    def error_now(self) -> str:
        return self.worker_stopped_error if self.worker_stopped else self.error

    @property
    def is_finished(self) -> bool:
        return self.state_now not in self.UNFINISHED


class TrainingJob(RunByTheWorker):
    """One request to retrain the model, run by the background worker (classifier.tasks.retrain).

    At most one job is queued or running at a time: the database refuses a second.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    UNFINISHED = (State.QUEUED, State.RUNNING)

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="training_jobs"
    )
    state = models.CharField(max_length=20, choices=State, default=State.QUEUED)
    # The version it fine-tunes from, and what it was asked to do (epochs, reference data), fixed at the request.
    base_version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    options = models.JSONField(default=dict)
    # Phase, epoch, step, loss, validation accuracy, seconds left: written by the worker as it goes.
    progress = models.JSONField(default=dict)
    cancel_requested = models.BooleanField(default=False)
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_job"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A unique index on a constant, over the unfinished rows only: at most one such row.
            models.UniqueConstraint(
                Value(1), condition=Q(state__in=["queued", "running"]), name="one_unfinished_training_job"
            ),
        ]

    def __str__(self) -> str:
        return f"Training job {self.pk} ({self.state})"

    @property
    def stale_seconds(self) -> int:
        """A running job silent this long lost its worker."""
        return settings.EMOTIONSITE_RETRAIN.stale_seconds

    @property
    def worker_stopped_error(self) -> str:
        return (
            f"The worker stopped: no sign of life since {self.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC. "
            "Nothing it trained was kept; the active model version is unchanged."
        )

    @property
    def fraction_done(self) -> float | None:
        """The share of training steps done; None before training starts."""
        if self.state == self.State.SUCCEEDED:
            return 1.0
        progress = self.progress
        if not progress.get("steps"):
            return None
        done = (progress["epoch"] - 1) * progress["steps"] + progress["step"]
        return done / (progress["epochs"] * progress["steps"])

    @property
    def progress_summary(self) -> str:
        """One line for people: where the job is, e.g. "epoch 2 of 6, loss 1.234, validation 61.5%, 1 min 5 s left"."""
        progress = self.progress
        if self.state == self.State.QUEUED:
            if timezone.now() - self.created_at > QUEUED_HINT_AFTER:
                return "still waiting for the worker: is `python manage.py db_worker` running?"
            return "waiting for the worker"
        if self.is_finished or progress.get("phase") != "training":
            return progress.get("phase", "") if self.state == self.State.RUNNING else ""
        parts = [f"epoch {progress['epoch']} of {progress['epochs']}", f"loss {progress['loss']:.3f}"]
        if progress.get("validation_accuracy") is not None:
            parts.append(f"validation {progress['validation_accuracy']:.1%}")
        minutes, seconds = divmod(int(progress["seconds_left"]), 60)
        parts.append(f"{minutes} min {seconds} s left" if minutes else f"{seconds} s left")
        if self.cancel_requested:
            parts.append("stopping")
        return ", ".join(parts)


class Video(RunByTheWorker):
    """One uploaded video, read by the background worker (classifier.tasks.read_video): frames sampled at
    `samples_per_second`, their faces found, read and followed over time.

    The faces are stored as a capture's are, each sampled frame with a face as a Capture (source "video")
    holding its time, so they are reviewed and counted like any other. They are written together with the
    state "succeeded", in one transaction: a video is read whole, or has no faces at all.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    UNFINISHED = (State.QUEUED, State.RUNNING)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="videos")
    # The file as uploaded, private: no URL serves it.
    file = models.FileField(max_length=200)
    name = models.CharField(max_length=255)  # the uploaded file's name, for people
    container = models.CharField(max_length=10)  # "MP4", "MOV" or "WebM"
    codec = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    duration = models.FloatField()  # seconds
    frame_rate = models.FloatField(null=True, blank=True)  # frames per second, when the file says
    size = models.PositiveBigIntegerField()  # bytes
    samples_per_second = models.FloatField()
    state = models.CharField(max_length=20, choices=State, default=State.QUEUED)
    samples_done = models.PositiveIntegerField(default=0)
    samples_total = models.PositiveIntegerField()  # the frames that will be read: duration x rate, at most every frame
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="videos"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="video_owner_created")]
        constraints = [
            models.CheckConstraint(
                condition=Q(samples_done__lte=F("samples_total")), name="video_samples_done_at_most_total"
            ),
        ]

    def __str__(self) -> str:
        return f"Video {self.pk} by {self.owner}"

    @property
    def frames_folder(self) -> str:
        """Where the worker stores the video's frames as it reads them: beside the video, named after it."""
        return f"{os.path.splitext(self.file.name)[0]}-frames"

    @property
    def stale_seconds(self) -> int:
        """A running video silent this long lost its worker."""
        return settings.EMOTIONSITE_VIDEO.stale_seconds

    @property
    def worker_stopped_error(self) -> str:
        return (
            f"The worker stopped while reading this video: no sign of life since {self.heartbeat_at:%Y-%m-%d %H:%M:%S}"
            " UTC. Nothing it read was kept; delete the video and upload it again."
        )

    @property
    def fraction_done(self) -> float:
        if self.state == self.State.SUCCEEDED:
            return 1.0
        return self.samples_done / self.samples_total if self.samples_total else 0.0

    @property
    def progress_summary(self) -> str:
        """Where the reading is, in words: "waiting for the worker", "frame 120 of 300"."""
        if self.state == self.State.QUEUED:
            if timezone.now() - self.created_at > QUEUED_HINT_AFTER:
                return "still waiting for the worker: is `python manage.py db_worker` running?"
            return "waiting for the worker"
        if self.state_now == self.State.RUNNING:
            return f"frame {self.samples_done} of {self.samples_total} read"
        return ""
