"""The worker's side of retraining: run a queued job, evaluate its candidate, promote or reject it.

A job's life. `services.retrain_request` (the staff page, the API, the admin) stores a queued
TrainingJob and enqueues `classifier.tasks.retrain`. The worker runs `training_job_run`: it fine-tunes
the job's base version on the reviewed faces (`classifier.training_data`) with `ml.train`, in a hidden
folder of EMOTIONSITE_MODEL_DIR (a name starting with "." is never registered), exports the best epoch
there, and evaluates the candidate and the active version on the same held-out reviewed faces, and on
FER2013 PublicTest when reference data is configured. Only then does the folder move to its final
name, immutable, and get its row: active when the gate (`ml.promotion`) passes it (ahead on the
held-out reviews and, at 95% confidence, not worse than the active version by more than the margins),
rejected otherwise, with the numbers either way. A worker killed on the way leaves only
the hidden folder, which `services.training_jobs_fail_stale` removes when it marks the job failed.
A worker told to stop (SIGTERM, SIGINT) fails its job at once, saying so, removes the folder and exits.

Paddle is imported inside the worker's functions only: the web processes that request jobs never need it.
"""

import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from classifier import selectors, services, training_data
from classifier.inference import model_folder
from classifier.models import ModelActivation, ModelVersion, TrainingJob
from classifier.worker_signals import StopOnSignal, WorkerStopping
from ml.data import LabelledImages
from ml.model_folder import read_metadata, write_metadata
from ml.runtime import usable_cores

if TYPE_CHECKING:
    from ml.predictor import Predictor

logger = logging.getLogger(__name__)

# In EMOTIONSITE_MODEL_DIR, hidden, so never registered: the active version's predictions on the reference
# data's PublicTest, which every job with reference data compares its candidate with. A version's are computed
# once (ml.evaluate.predict_all), not at every job: evaluating on PublicTest took 10.7 s instead of 22.2 s
# (bench/bench_retraining.py --reference --jobs 2, 2-core AVX2 EPYC). A candidate's are kept only once it is
# activated: most candidates never are.
KEPT_PREDICTIONS_FOLDER = ".kept-predictions"
HEARTBEAT_SECONDS = 1.0  # how often a running job writes its progress and reads its cancel flag
# How often a running job says it is alive outside training; stale_seconds must be well above it.
HEARTBEAT_THREAD_SECONDS = 30.0


class RetrainFailed(Exception):
    """The job cannot go on with what it found when it ran; the message says why, for staff."""


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


def _stopped_error(stopping: WorkerStopping, progress: dict) -> str:
    if progress.get("phase") == "training":
        where = f"in epoch {progress['epoch']} of {progress['epochs']}"
    else:
        where = f"while {progress.get('phase', 'starting')}"
    return (
        f"The worker was stopped ({stopping}) {where}. "
        "Nothing it trained was kept; the active model version is unchanged."
    )


def _running(job_id: int):
    return TrainingJob.objects.filter(pk=job_id, state=TrainingJob.State.RUNNING)


def training_job_run(job_id: int) -> None:
    """Run a queued job to its end (the worker's task): succeeded with a version, failed or cancelled."""
    from ml.train import TrainingStopped

    services.training_jobs_fail_stale()
    now = timezone.now()
    started = TrainingJob.objects.filter(pk=job_id, state=TrainingJob.State.QUEUED).update(
        state=TrainingJob.State.RUNNING, started_at=now, heartbeat_at=now, progress={"phase": "reading the faces"}
    )
    if not started:
        return  # cancelled before it started, or already run
    job = TrainingJob.objects.select_related("base_version").get(pk=job_id)
    work_folder = services.training_job_work_folder(job)
    heartbeat = _Heartbeat(job_id)
    heartbeat.start()
    stop = StopOnSignal()
    try:
        with stop:
            _train_and_decide(job, work_folder, _JobChannel(job), stop)
    except (TrainingStopped, JobCancelled):
        _running(job_id).update(state=TrainingJob.State.CANCELLED, finished_at=timezone.now())
    except JobAbandoned:
        logger.warning("Training job %s was marked failed while it ran; its work is dropped", job_id)
    except WorkerStopping as stopping:
        error = _stopped_error(stopping, TrainingJob.objects.get(pk=job_id).progress)
        # Not if the signal came while the version was being kept, and it was.
        if _running(job_id).update(state=TrainingJob.State.FAILED, error=error, finished_at=timezone.now()):
            logger.warning("Training job %s: %s", job_id, error)
    except Exception as error:
        logger.exception("Training job %s failed", job_id)
        _running(job_id).update(
            state=TrainingJob.State.FAILED, error=str(error) or type(error).__name__, finished_at=timezone.now()
        )
    finally:
        heartbeat.stopped.set()
        heartbeat.join()
        shutil.rmtree(work_folder, ignore_errors=True)
    stop.pass_on()


class JobCancelled(Exception):
    """Cancel was asked after training ended, before the version was kept: nothing is kept."""


def _train_and_decide(job: TrainingJob, work_folder: Path, channel: _JobChannel, stop: StopOnSignal) -> None:
    from ml.data import read_fer2013_by_usage
    from ml.evaluate import keep_predictions
    from ml.export import export_run
    from ml.predictor import Predictor
    from ml.train import TrainConfig, train

    options, base_version = job.options, job.base_version
    if base_version is None:
        raise RetrainFailed("The version this job was to fine-tune has been deleted.")
    faces = training_data.reviewed_faces()
    for name, split in (("training", faces.train), ("validation", faces.validation), ("held-out", faces.held_out)):
        if len(split) == 0 or (name == "training" and len(split) < options["batch_size"]):
            raise RetrainFailed(
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
        frozen_stages=options["frozen_stages"],
        # A job queued before this option existed fine-tunes as jobs then did.
        parent_share=options.get("parent_share", 0.0),
        class_weight_power=options["class_weight_power"],
        warmup_epochs=0.5,
        seed=job.pk,
        init_from=str(model_folder(base_version)),
    )
    result = train(
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
    threads = usable_cores()
    candidate = Predictor.load(folder, threads=threads)
    active = Predictor.load(model_folder(active_version), threads=threads)
    evaluation = {"held_out": _compare(candidate, active, faces.held_out)[0]}
    kept_in = Path(settings.EMOTIONSITE_MODEL_DIR) / KEPT_PREDICTIONS_FOLDER
    if reference_test is not None:
        evaluation["public_test"], candidate_on_reference = _compare(
            candidate, active, reference_test, active_kept_in=kept_in
        )
    margins = {"held_out": options["promotion_margin"], "public_test": options["reference_margin"]}
    promoted, decision = _decide(evaluation, active_version, margins=margins)

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
        "evaluated_in": candidate.computes_in,  # bfloat16 or float32: what this CPU offers (ml.predictor)
    }
    # Should the row never be written (the worker killed just after the move), registering the folder
    # later reads its verdict here and keeps a rejected version rejected.
    metadata |= {"promoted": promoted, "decision": decision}
    write_metadata(folder, metadata)
    epochs = [
        {
            "epoch": record["epoch"],
            "loss": round(record["train_loss"], 4),
            "validation_accuracy": record["validation_accuracy"],
        }
        for record in result.history
    ]
    with stop.held():
        model_version = _keep(job, folder, metadata, base_version, epochs=epochs)
    if reference_test is not None and model_version.state == ModelVersion.State.ACTIVE:
        # The next job compares its candidate with this version, whose predictions are at hand.
        keep_predictions(candidate, reference_test.images, candidate_on_reference, kept_in)
    logger.info("Training job %s made %s: %s", job.pk, version, decision)


def _keep(
    job: TrainingJob, folder: Path, metadata: dict, base_version: ModelVersion, *, epochs: list[dict]
) -> ModelVersion:
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
            compared_with = metadata["metrics"]["held_out"]["active_version"]
            active_now = selectors.active_model_version()
            activate = metadata["promoted"]
            if activate and (active_now is None or active_now.version != compared_with):
                # Staff activated another version while this one was being evaluated: it passed the gate
                # against another version, so it stays a candidate instead of replacing this one.
                activate = False
                metadata["decision"] = (
                    f"Not activated: {active_now} became the active version while this one was compared with "
                    f"{compared_with}. {metadata['decision']}"
                )
                write_metadata(folder, metadata)
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
            if activate:
                services.model_version_activate(
                    model_version=model_version, reason=ModelActivation.Reason.PROMOTION, training_job=job
                )
            TrainingJob.objects.filter(pk=job.pk).update(
                state=TrainingJob.State.SUCCEEDED,
                model_version=model_version,
                # Each epoch's loss and validation accuracy: the job's row keeps its learning curve.
                progress={"phase": "finished", "history": epochs},
                finished_at=timezone.now(),
            )
    except BaseException:
        if moved:
            shutil.rmtree(final_folder, ignore_errors=True)
        raise
    return model_version


def _compare(
    candidate: "Predictor", active: "Predictor", data: LabelledImages, *, active_kept_in: Path | None = None
) -> tuple[dict, np.ndarray]:
    """Both versions on the same faces: each one's scores and the paired comparison the gate judges, and the
    candidate's probabilities. With `active_kept_in`, the active version's predictions are kept there for the
    next job, or read from there."""
    from ml.evaluate import evaluate_predictions, predict_all
    from ml.promotion import compare_paired

    scores, correct, probabilities = {"count": len(data), "active_version": active.version}, {}, {}
    for name, predictor, kept_in in (("candidate", candidate, None), ("active", active, active_kept_in)):
        probabilities[name] = predict_all(predictor, data.images, kept_in=kept_in)
        correct[name] = probabilities[name].argmax(axis=1) == data.labels
        metrics = evaluate_predictions(data.labels, probabilities[name])
        scores[name] = {
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "recall": {label: figures["recall"] for label, figures in metrics["per_class"].items()},
        }
    comparison = compare_paired(correct["candidate"], correct["active"]).as_dict()
    return scores | {"comparison": comparison}, probabilities["candidate"]


EVALUATION_NAMES = {"held_out": "held-out reviewed faces", "public_test": "FER2013 PublicTest faces"}


def _decide(evaluation: dict, active_version: ModelVersion, *, margins: dict[str, float]) -> tuple[bool, str]:
    """Promote only when every comparison passes the gate (`ml.promotion.judge`) with its margin; on the
    held-out reviewed faces the candidate must also be ahead."""
    from ml.promotion import Interval, PairedComparison, judge

    verdicts = []
    for key, scores in evaluation.items():
        figures = dict(scores["comparison"])
        for name in ("candidate_interval", "active_interval", "difference_interval"):
            figures[name] = Interval(**figures[name])
        verdicts.append(
            judge(
                PairedComparison(**figures),
                margin=margins[key],
                must_be_ahead=key == "held_out",
                what=EVALUATION_NAMES[key],
            )
        )
    promoted = all(verdict.passed for verdict in verdicts)
    findings = "; ".join(verdict.words for verdict in verdicts)
    if promoted:
        return True, f"Activated in place of {active_version.version}: {findings}."
    return False, f"Rejected, {active_version.version} stays active: {findings}."
