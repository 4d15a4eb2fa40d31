"""Retraining end to end in this process: request, the real worker loop, evaluation, promotion or rejection."""

import json
import signal
import subprocess
import time
from dataclasses import replace
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.db import IntegrityError, OperationalError, transaction
from django.test import Client
from django_tasks_db.models import DBTaskResult

from classifier import retraining, selectors, services, training_data
from classifier.models import Face, ModelVersion, TrainingJob
from classifier.services import CancelRefused, RetrainRefused
from ml.data import LabelledImages
from ml.evaluate import predict_all
from ml.labels import EXPRESSIONS, INPUT_SIZE
from ml.predictor import Predictor
from ml.promotion import compare_paired
from ml.testing import synthetic_crops
from tests.classifier.retrain_site import SAME_CAPTURE_IDS, TEST_RETRAIN, retrain_site, reviewed_faces
from tests.conftest import db_worker_running, make_user

# Enough training for the tiny model to learn reviews shifted by one expression (`reviewed_faces`'
# label_shift=1): its candidate is then clearly ahead (measured: 55% against 0% on 11 held-out faces), also
# with a quarter of its parent's weights blended in.
LEARNS_THE_SHIFT = replace(TEST_RETRAIN, epochs=10, learning_rate=0.05, parent_share=0.25)


@pytest.fixture
def tiny_active(db, settings, tmp_path, tiny_models_dir) -> ModelVersion:
    return retrain_site(settings, tmp_path, tiny_models_dir)


def run_worker() -> str:
    """The real django-tasks-db worker, in this process, until the queue is empty."""
    out = StringIO()
    call_command("db_worker", "--batch", "--no-reload", "--no-startup-delay", stdout=out, stderr=out)
    return out.getvalue()


def test_a_face_keeps_the_crop_the_model_saw(tiny_active, user):
    face = reviewed_faces(user, 1)[0]
    crop = training_data.face_crop(face)
    assert crop.shape == (INPUT_SIZE, INPUT_SIZE) and crop.dtype == np.uint8
    # A face stored before crops were kept is cut from its image by its box: the same pixels here,
    # since the capture is the crop itself (PNG, lossless; the stored JPEG is close, not equal).
    Face.objects.filter(pk=face.pk).update(crop=None)
    recut = training_data.face_crop(Face.objects.select_related("capture").get(pk=face.pk))
    assert recut.shape == crop.shape and np.abs(recut.astype(int) - crop).mean() < 4


def test_the_split_is_by_capture_and_fixed():
    # Pinned: a change of hash would move faces that were held out into training.
    assert [training_data.split_of(capture_id) for capture_id in range(1, 13)] == [
        "train", "train", "validation", "train", "train", "held_out",
        "train", "train", "held_out", "train", "train", "held_out",
    ]  # fmt: skip
    # A video's frames go together, by the video's id, hashed apart from capture ids.
    assert [training_data.split_of(1, video_id=video_id) for video_id in range(1, 13)] == [
        "train", "train", "train", "train", "held_out", "validation",
        "validation", "train", "train", "train", "train", "held_out",
    ]  # fmt: skip
    splits = [training_data.split_of(capture_id) for capture_id in range(1, 2001)]
    shares = {name: splits.count(name) / len(splits) for name in ("train", "validation", "held_out")}
    assert shares["held_out"] == pytest.approx(0.2, abs=0.03) and shares["validation"] == pytest.approx(0.1, abs=0.03)


def test_too_few_reviewed_faces_is_refused_saying_how_many(tiny_active, staff_user):
    reviewed_faces(staff_user, 10)
    with pytest.raises(RetrainRefused, match=r"at least 40 reviewed faces; there are 10 \(angry 3, disgust 2, "):
        services.retrain_request(requested_by=staff_user)
    assert not TrainingJob.objects.exists()


@pytest.mark.slow
def test_reviews_without_an_expression_still_retrain(tiny_active, staff_user, settings):
    settings.EMOTIONSITE_RETRAIN = replace(settings.EMOTIONSITE_RETRAIN, promotion_margin=1.0)
    faces = reviewed_faces(staff_user, 60)
    Face.objects.filter(pk__in=[face.pk for face in faces if face.true_label == "neutral"]).delete()

    job = services.retrain_request(requested_by=staff_user)
    retraining.training_job_run(job.pk)

    job.refresh_from_db()
    assert job.state == TrainingJob.State.SUCCEEDED, job.error
    reviewed = job.model_version.training["reviewed_faces"]
    assert sum(split["neutral"] for split in reviewed.values()) == 0
    assert sum(sum(split.values()) for split in reviewed.values()) > 40


def test_a_second_request_is_refused_while_one_is_unfinished(tiny_active, staff_user):
    reviewed_faces(staff_user, 60)
    first = services.retrain_request(requested_by=staff_user)
    with pytest.raises(RetrainRefused, match=rf"Training job {first.pk} is queued: one job runs at a time"):
        services.retrain_request(requested_by=staff_user)
    # The database holds the line too, should two requests pass the check at once.
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingJob.objects.create(requested_by=staff_user, base_version=tiny_active, state="running")
    services.training_job_cancel(job=first)
    assert services.retrain_request(requested_by=staff_user).state == TrainingJob.State.QUEUED


@pytest.mark.slow
@SAME_CAPTURE_IDS  # and transactional: the worker loop closes the database connection between tasks
def test_a_job_runs_in_the_worker_and_its_better_candidate_goes_live(tiny_active, staff_user, settings):
    reviewed_faces(staff_user, 140, label_shift=1)
    settings.EMOTIONSITE_RETRAIN = LEARNS_THE_SHIFT
    job = services.retrain_request(requested_by=staff_user)  # committed, so enqueued at once
    assert DBTaskResult.objects.get().args_kwargs == {"args": [job.pk], "kwargs": {}}

    run_worker()

    job.refresh_from_db()
    assert job.state == TrainingJob.State.SUCCEEDED, job.error
    candidate = job.model_version
    assert candidate.state == ModelVersion.State.ACTIVE, candidate.decision
    assert selectors.active_model_version() == candidate
    assert candidate.parent == tiny_active and ModelVersion.objects.get(pk=tiny_active.pk).state == "previous"
    assert candidate.decision.startswith("Activated in place of tiny-1: on ")
    activation = candidate.activations.get()
    assert (activation.replaced, activation.reason, activation.training_job, activation.activated_by) == (
        tiny_active,
        "promotion",
        job,
        None,
    )
    held_out = candidate.metrics["held_out"]
    comparison = held_out["comparison"]
    assert comparison["count"] == held_out["count"] and comparison["difference"] > 0
    assert comparison["candidate_accuracy"] == held_out["candidate"]["accuracy"]
    low, high = comparison["difference_interval"]["low"], comparison["difference_interval"]["high"]
    assert low <= comparison["difference"] <= high
    assert held_out["active_version"] == "tiny-1" and held_out["count"] == sum(
        candidate.training["reviewed_faces"]["held_out"].values()
    )
    assert 0 <= held_out["candidate"]["accuracy"] <= 1 and set(held_out["candidate"]["recall"]) == set(EXPRESSIONS)
    summary = candidate.training["reviewed_faces"]
    assert sum(sum(split.values()) for split in summary.values()) == 140
    assert candidate.training["reference_data"] is None and candidate.training["reference_images"] == 0
    assert candidate.training["evaluated_in"] in ("bfloat16", "float32")
    assert candidate.training["config"]["parent_share"] == 0.25  # the settings' recipe, as the job trained it
    assert job.progress["phase"] == "finished" and job.started_at <= job.finished_at
    # Its learning curve stays on its row: each epoch's loss and validation accuracy.
    assert [epoch["epoch"] for epoch in job.progress["history"]] == list(range(1, 11))
    staff = Client()
    staff.force_login(staff_user)
    page = staff.get("/staff/training/").content.decode()
    assert '<svg class="epoch-curve"' in page and "10 epochs: loss " in page
    # The folder is final, immutable, and says the same as the row; the work folder is gone.
    folder = Path(settings.EMOTIONSITE_MODEL_DIR) / candidate.path
    metadata = json.loads((folder / "model.json").read_text())
    assert metadata["version"] == candidate.version and metadata["parent"] == "tiny-1"
    assert metadata["decision"] == candidate.decision and metadata["metrics"]["held_out"] == held_out
    assert sorted(path.name for path in folder.parent.iterdir()) == sorted(["tiny-1", candidate.version])


@pytest.mark.slow
@SAME_CAPTURE_IDS
def test_a_candidate_that_is_not_ahead_is_kept_as_rejected(tiny_active, staff_user, settings):
    reviewed_faces(staff_user, 140)
    # A learning rate so small that the candidate reads every face as the active version does: a tie.
    settings.EMOTIONSITE_RETRAIN = replace(TEST_RETRAIN, learning_rate=1e-9)
    job = services.retrain_request(requested_by=staff_user)
    retraining.training_job_run(job.pk)

    job.refresh_from_db()
    assert job.state == TrainingJob.State.SUCCEEDED
    assert job.model_version.state == ModelVersion.State.REJECTED
    assert selectors.active_model_version() == tiny_active
    assert job.model_version.decision.startswith("Rejected, tiny-1 stays active: on ")
    assert "held-out reviewed faces" in job.model_version.decision
    assert (
        "difference +0.0 points" in job.model_version.decision and "too few faces to tell" in job.model_version.decision
    )


def reference_csv(path: Path, *, training: int, public_test: int, label_shift: int = 0) -> tuple[Path, LabelledImages]:
    """A FER2013-shaped CSV of synthetic crops, and its PublicTest rows in the file's order; with `label_shift`,
    labelled as `reviewed_faces` labels them."""
    crops = synthetic_crops(training + public_test, seed=9)
    labels = (crops.labels + label_shift) % len(EXPRESSIONS)
    usages = ["Training"] * training + ["PublicTest"] * public_test
    rows = [
        f"{label},{' '.join(map(str, pixels.ravel()))},{usage}"
        for pixels, label, usage in zip(crops.images, labels, usages, strict=True)
    ]
    path.write_text("\n".join(["emotion,pixels,Usage", *rows]) + "\n")
    return path, LabelledImages(crops.images[training:], labels[training:])


@pytest.mark.slow
@SAME_CAPTURE_IDS
def test_the_active_versions_predictions_on_the_reference_data_are_kept_for_the_next_job(
    tiny_active, staff_user, settings, tmp_path
):
    reviewed_faces(staff_user, 140)
    path, public_test = reference_csv(tmp_path / "fer2013.csv", training=64, public_test=30)
    settings.EMOTIONSITE_REFERENCE_DATA = str(path)
    settings.EMOTIONSITE_RETRAIN = replace(TEST_RETRAIN, learning_rate=1e-9)  # a tie: tiny-1 stays active
    first = services.retrain_request(requested_by=staff_user)
    retraining.training_job_run(first.pk)
    first.refresh_from_db()
    assert first.state == TrainingJob.State.SUCCEEDED and first.model_version.state == ModelVersion.State.REJECTED
    assert first.model_version.metrics["public_test"]["active"]["accuracy"] > 0.5
    # The active version's, not the candidate's: most candidates are never active.
    (kept,) = (Path(settings.EMOTIONSITE_MODEL_DIR) / retraining.KEPT_PREDICTIONS_FOLDER).iterdir()

    # The next job reads them instead of computing them again: kept predictions that say every face is
    # something it is not make the active version read 0%.
    wrong = np.eye(len(EXPRESSIONS), dtype=np.float32)[(public_test.labels + 1) % len(EXPRESSIONS)]
    np.save(kept, wrong)
    second = services.retrain_request(requested_by=staff_user)
    retraining.training_job_run(second.pk)
    second.refresh_from_db()
    assert second.state == TrainingJob.State.SUCCEEDED, second.error
    assert second.model_version.metrics["public_test"]["active"]["accuracy"] == 0
    assert second.model_version.metrics["public_test"]["count"] == len(public_test)


@pytest.mark.slow
@SAME_CAPTURE_IDS
def test_an_activated_candidates_predictions_on_the_reference_data_are_kept_for_the_next_job_too(
    tiny_active, staff_user, settings, tmp_path
):
    reviewed_faces(staff_user, 140, label_shift=1)
    path, public_test = reference_csv(tmp_path / "fer2013.csv", training=64, public_test=30, label_shift=1)
    settings.EMOTIONSITE_REFERENCE_DATA = str(path)
    settings.EMOTIONSITE_RETRAIN = LEARNS_THE_SHIFT
    job = services.retrain_request(requested_by=staff_user)
    retraining.training_job_run(job.pk)
    job.refresh_from_db()
    assert job.model_version.state == ModelVersion.State.ACTIVE, job.model_version.decision

    models_dir = Path(settings.EMOTIONSITE_MODEL_DIR)
    kept_in = models_dir / retraining.KEPT_PREDICTIONS_FOLDER
    versions = {name: Predictor.load(models_dir / name) for name in ("tiny-1", job.model_version.path)}
    assert {kept.name[:32] for kept in kept_in.iterdir()} == {
        predictor.fingerprint[:32] for predictor in versions.values()
    }
    # What the new version's file holds is what it predicts for those faces.
    (kept,) = kept_in.glob(f"{versions[job.model_version.path].fingerprint[:32]}-*")
    np.testing.assert_allclose(
        np.load(kept), predict_all(versions[job.model_version.path], public_test.images), rtol=1e-5, atol=1e-6
    )


def evaluation_of(candidate_right: list[bool], active_right: list[bool]) -> dict:
    """What the worker stores for one comparison, from each face's outcome for both versions."""
    return {"comparison": compare_paired(np.array(candidate_right), np.array(active_right)).as_dict()}


def test_the_decision_needs_every_comparison_to_pass(tiny_active):
    clear_win = evaluation_of([True] * 90 + [False] * 10, [True] * 60 + [False] * 40)
    clear_loss = evaluation_of([True] * 50 + [False] * 50, [True] * 90 + [False] * 10)
    margins = {"held_out": 0.02, "public_test": 0.02}

    promoted, decision = retraining._decide({"held_out": clear_win}, tiny_active, margins=margins)
    assert promoted
    assert decision.startswith("Activated in place of tiny-1: on 100 held-out reviewed faces the candidate reads 90.0%")
    promoted, decision = retraining._decide(
        {"held_out": clear_win, "public_test": clear_loss}, tiny_active, margins=margins
    )
    assert not promoted
    assert decision.startswith("Rejected, tiny-1 stays active: on 100 held-out reviewed faces")
    assert decision.endswith(
        "on 100 FER2013 PublicTest faces the candidate reads 50.0% (40.4%-59.6%), the active "
        "version 90.0% (82.6%-94.5%); difference -40.0 points (95% interval -49.2 to -30.0): "
        "worse by more than the margin of 2.0 points."
    )


def test_cancelling_a_queued_job_ends_it_before_it_starts(tiny_active, staff_user):
    reviewed_faces(staff_user, 60)
    job = services.training_job_cancel(job=services.retrain_request(requested_by=staff_user))
    assert job.state == TrainingJob.State.CANCELLED and job.finished_at
    retraining.training_job_run(job.pk)  # the worker finds it cancelled and leaves it
    job.refresh_from_db()
    assert job.state == TrainingJob.State.CANCELLED and job.model_version is None
    with pytest.raises(CancelRefused, match=f"Training job {job.pk} has already ended: it was cancelled"):
        services.training_job_cancel(job=job)


@pytest.mark.slow
def test_a_running_job_stops_when_cancelled_and_keeps_nothing(tiny_active, staff_user, settings, monkeypatch):
    reviewed_faces(staff_user, 60)
    job = services.retrain_request(requested_by=staff_user)
    real_on_progress = retraining._JobChannel.on_progress

    def cancel_during_training(channel, progress):
        real_on_progress(channel, progress)
        TrainingJob.objects.filter(pk=channel.job_id).update(cancel_requested=True)  # as the staff page does

    monkeypatch.setattr(retraining, "HEARTBEAT_SECONDS", 0.0)
    monkeypatch.setattr(retraining._JobChannel, "on_progress", cancel_during_training)
    retraining.training_job_run(job.pk)

    job.refresh_from_db()
    assert job.state == TrainingJob.State.CANCELLED and job.progress["epoch"] == 1 and job.progress["step"] == 1
    assert ModelVersion.objects.count() == 1 and selectors.active_model_version() == tiny_active
    assert [path.name for path in Path(settings.EMOTIONSITE_MODEL_DIR).iterdir()] == ["tiny-1"]


def wait_for_the_second_epoch(job: TrainingJob, worker: subprocess.Popen, settings) -> None:
    """Until the job trains its second epoch, the first one's checkpoint on disk."""
    deadline = time.monotonic() + 120
    while not TrainingJob.objects.get(pk=job.pk).progress.get("epoch", 0) >= 2:
        assert worker.poll() is None, worker.stderr.read().decode()
        assert time.monotonic() < deadline, "the worker never got into its second epoch"
        time.sleep(0.2)
    work_folder = Path(settings.EMOTIONSITE_MODEL_DIR) / f".training-job-{job.pk}"
    assert (work_folder / "run" / "state.json").is_file()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_fails_its_job_once_stale_and_leaves_the_site_as_it_was(
    settings, tmp_path, tiny_models_dir, media_dir
):
    """The worker is a real `manage.py db_worker` process, killed (SIGKILL) in the middle of training."""
    tiny = retrain_site(settings, tmp_path, tiny_models_dir)
    staff = make_user("admin", staff=True)
    reviewed_faces(staff, 60)
    settings.EMOTIONSITE_RETRAIN = replace(settings.EMOTIONSITE_RETRAIN, epochs=500)  # far longer than the test waits
    job = services.retrain_request(requested_by=staff)  # no atomic block here: committed, and enqueued

    with db_worker_running(settings, media_dir) as worker:
        wait_for_the_second_epoch(job, worker, settings)

    assert TrainingJob.objects.get(pk=job.pk).state == TrainingJob.State.RUNNING  # nobody knows yet
    assert services.training_jobs_fail_stale() == []  # silent for less than stale_seconds: still running
    settings.EMOTIONSITE_RETRAIN = replace(settings.EMOTIONSITE_RETRAIN, stale_seconds=1)
    time.sleep(1.5)
    assert [stale.pk for stale in services.training_jobs_fail_stale()] == [job.pk]

    job.refresh_from_db()
    assert job.state == TrainingJob.State.FAILED and job.error.startswith("The worker stopped: no sign of life since")
    assert selectors.active_model_version() == tiny and ModelVersion.objects.count() == 1
    assert [path.name for path in Path(settings.EMOTIONSITE_MODEL_DIR).iterdir()] == ["tiny-1"]
    # And the next request may run.
    assert services.retrain_request(requested_by=staff).state == TrainingJob.State.QUEUED


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_told_to_stop_fails_its_job_at_once_and_the_next_job_runs(
    settings, tmp_path, tiny_models_dir, media_dir
):
    """SIGTERM (`docker stop`, systemd, a deploy) to a real `manage.py db_worker` in the middle of training."""
    tiny = retrain_site(settings, tmp_path, tiny_models_dir)
    staff = make_user("admin", staff=True)
    reviewed_faces(staff, 60)
    settings.EMOTIONSITE_RETRAIN = replace(settings.EMOTIONSITE_RETRAIN, epochs=500)
    job = services.retrain_request(requested_by=staff)

    with db_worker_running(settings, media_dir) as worker:
        wait_for_the_second_epoch(job, worker, settings)
        worker.send_signal(signal.SIGTERM)
        # At once: well inside docker stop's 10 s grace, and nowhere near stale_seconds (300 s).
        assert worker.wait(timeout=10) == 0

    job.refresh_from_db()
    assert job.state == TrainingJob.State.FAILED and job.finished_at is not None
    assert job.error.startswith("The worker was stopped (SIGTERM) in epoch ")
    assert job.error.endswith("Nothing it trained was kept; the active model version is unchanged.")
    assert selectors.active_model_version() == tiny and ModelVersion.objects.count() == 1
    assert [path.name for path in Path(settings.EMOTIONSITE_MODEL_DIR).iterdir()] == ["tiny-1"]
    # The next job is not blocked: it is accepted, and a worker runs it to its end.
    settings.EMOTIONSITE_RETRAIN = TEST_RETRAIN
    following = services.retrain_request(requested_by=staff)
    run_worker()
    following.refresh_from_db()
    assert following.state == TrainingJob.State.SUCCEEDED, following.error


def only_the_base_version_is_left(settings, tiny_active) -> None:
    assert list(ModelVersion.objects.all()) == [tiny_active] and selectors.active_model_version() == tiny_active
    assert [path.name for path in Path(settings.EMOTIONSITE_MODEL_DIR).iterdir()] == ["tiny-1"]


@pytest.mark.slow
@pytest.mark.parametrize("when", ["training", "evaluating"])
def test_a_job_marked_failed_while_its_worker_lives_on_keeps_nothing(
    tiny_active, staff_user, settings, monkeypatch, when
):
    """A worker that paused past stale_seconds finds its job failed and stops, instead of writing over it."""
    reviewed_faces(staff_user, 60)
    settings.EMOTIONSITE_RETRAIN = replace(settings.EMOTIONSITE_RETRAIN, promotion_margin=1.0)
    job = services.retrain_request(requested_by=staff_user)

    def marked_failed():
        TrainingJob.objects.filter(pk=job.pk).update(state="failed", error="The worker stopped: ...")

    if when == "training":
        real_on_progress = retraining._JobChannel.on_progress

        def on_progress(channel, progress):
            marked_failed()
            real_on_progress(channel, progress)

        monkeypatch.setattr(retraining._JobChannel, "on_progress", on_progress)
    else:
        real_compare = retraining._compare

        def compare(*args):
            marked_failed()
            return real_compare(*args)

        monkeypatch.setattr(retraining, "_compare", compare)
    retraining.training_job_run(job.pk)

    job.refresh_from_db()
    assert job.state == "failed" and job.error == "The worker stopped: ..." and job.model_version is None
    only_the_base_version_is_left(settings, tiny_active)


@pytest.mark.slow
def test_a_cancel_after_training_keeps_nothing(tiny_active, staff_user, settings, monkeypatch):
    reviewed_faces(staff_user, 60)
    settings.EMOTIONSITE_RETRAIN = replace(settings.EMOTIONSITE_RETRAIN, promotion_margin=1.0)
    job = services.retrain_request(requested_by=staff_user)
    real_compare = retraining._compare

    def compare(*args):
        services.training_job_cancel(job=job)  # staff press Cancel while the candidate is evaluated
        return real_compare(*args)

    monkeypatch.setattr(retraining, "_compare", compare)
    retraining.training_job_run(job.pk)

    job.refresh_from_db()
    assert job.state == "cancelled" and job.model_version is None
    only_the_base_version_is_left(settings, tiny_active)


@pytest.mark.slow
def test_a_failure_while_keeping_the_version_removes_its_folder(tiny_active, staff_user, settings, monkeypatch):
    reviewed_faces(staff_user, 140, label_shift=1)
    settings.EMOTIONSITE_RETRAIN = LEARNS_THE_SHIFT
    job = services.retrain_request(requested_by=staff_user)

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(retraining.services, "model_version_activate", locked)
    retraining.training_job_run(job.pk)

    job.refresh_from_db()
    assert job.state == "failed" and job.error == "database is locked"
    only_the_base_version_is_left(settings, tiny_active)


@pytest.mark.slow
def test_a_candidate_is_not_activated_over_a_version_it_was_not_compared_with(
    tiny_active, staff_user, settings, monkeypatch
):
    reviewed_faces(staff_user, 140, label_shift=1)
    settings.EMOTIONSITE_RETRAIN = LEARNS_THE_SHIFT
    other = ModelVersion.objects.create(version="tiny-other", path="tiny-1", state="candidate")
    job = services.retrain_request(requested_by=staff_user)
    real_decide = retraining._decide

    def staff_activate_another_meanwhile(*args, **kwargs):
        decided = real_decide(*args, **kwargs)
        services.model_version_activate(model_version=other, activated_by=staff_user)
        return decided

    monkeypatch.setattr(retraining, "_decide", staff_activate_another_meanwhile)
    retraining.training_job_run(job.pk)

    job.refresh_from_db()
    assert job.state == TrainingJob.State.SUCCEEDED
    assert selectors.active_model_version() == other  # what staff chose stays
    assert job.model_version.state == ModelVersion.State.CANDIDATE
    assert job.model_version.decision.startswith("Not activated: tiny-other became the active version")
