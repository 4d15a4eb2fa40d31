"""The doors to retraining: the staff training page, the admin's action, the API; and rollback from each."""

import shutil
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from classifier import services
from classifier.models import ModelActivation, ModelVersion, TrainingJob
from tests.classifier.retrain_site import retrain_site, reviewed_faces


@pytest.fixture
def tiny_active(db, settings, tmp_path, tiny_models_dir) -> ModelVersion:
    return retrain_site(settings, tmp_path, tiny_models_dir)


@pytest.fixture
def earlier_version(tiny_active, settings) -> ModelVersion:
    """A second version, older than tiny-1 and not active: what a rollback goes back to."""
    shutil.copytree(settings.EMOTIONSITE_MODEL_DIR / "tiny-1", settings.EMOTIONSITE_MODEL_DIR / "tiny-0")
    return ModelVersion.objects.create(
        version="tiny-0", path="tiny-0", state="candidate", created_at="2020-01-01T00:00Z"
    )


def test_only_staff_reach_the_training_page_and_the_jobs_api(tiny_active, user_client, user):
    assert user_client.get("/staff/training/").status_code == 302  # to the admin's sign-in
    assert user_client.post("/staff/training/retrain/").status_code == 302
    api = APIClient()
    api.force_authenticate(user)
    assert api.get("/api/v1/training-jobs/").status_code == 403
    assert api.post("/api/v1/training-jobs/").status_code == 403
    assert api.post("/api/v1/models/tiny-1/activate/").status_code == 403
    assert not TrainingJob.objects.exists()


def test_the_page_says_why_retraining_is_not_possible_yet(tiny_active, staff_client, staff_user):
    reviewed_faces(staff_user, 5)
    page = staff_client.get("/staff/training/").content.decode()
    assert "5 reviewed faces:" in page
    assert "Retraining needs at least 40 reviewed faces" in page
    assert '<button type="submit" id="retrain" disabled>Retrain the model</button>' in page
    # The margin is a difference of two accuracies: in points, not as a share.
    points = f"{settings.EMOTIONSITE_RETRAIN.promotion_margin * 100:g} percentage points"
    assert f"not worse than the active one by more than\n  {points}" in page

    response = staff_client.post("/staff/training/retrain/", follow=True)
    assert "Retraining needs at least 40 reviewed faces" in response.content.decode()
    assert not TrainingJob.objects.exists()


def test_retraining_from_the_page_queues_one_job_and_refuses_a_second(
    tiny_active, staff_client, staff_user, run_on_commit
):
    reviewed_faces(staff_user, 60)
    with run_on_commit():
        response = staff_client.post("/staff/training/retrain/", follow=True)
    job = TrainingJob.objects.get()
    assert f"Training job {job.pk} is queued." in response.content.decode()
    assert job.requested_by == staff_user and job.base_version == tiny_active and job.options["reference_data"] is None
    assert DBTaskResult.objects.get().args_kwargs["args"] == [job.pk]
    page = response.content.decode()
    assert f'data-job-id="{job.pk}" data-state="queued"' in page and "waiting for the worker" in page

    response = staff_client.post("/staff/training/retrain/", follow=True)
    assert f"Training job {job.pk} is queued: one job runs at a time" in response.content.decode()
    assert TrainingJob.objects.count() == 1

    response = staff_client.post(f"/staff/training/jobs/{job.pk}/cancel/", follow=True)
    assert f"Training job {job.pk} is cancelled." in response.content.decode()
    response = staff_client.post(f"/staff/training/jobs/{job.pk}/cancel/", follow=True)
    assert f"Training job {job.pk} has already ended: it was cancelled." in response.content.decode()


def test_the_reference_data_is_mixed_in_unless_unticked(tiny_active, staff_client, staff_user, settings):
    settings.EMOTIONSITE_REFERENCE_DATA = "/data/fer2013.csv.gz"
    reviewed_faces(staff_user, 60)
    assert "Mix in 64 images of the reference data set" in staff_client.get("/staff/training/").content.decode()
    staff_client.post("/staff/training/retrain/", {"use_reference_data": "on"})
    job = TrainingJob.objects.get()
    assert job.options["reference_data"] == "/data/fer2013.csv.gz" and job.options["reference_images"] == 64
    services.training_job_cancel(job=job)
    staff_client.post("/staff/training/retrain/")
    assert TrainingJob.objects.latest("id").options["reference_data"] is None


def test_the_api_requests_lists_and_cancels_jobs(tiny_active, staff_api, staff_user):
    response = staff_api.post("/api/v1/training-jobs/", {}, format="json")
    assert response.status_code == 409 and "at least 40 reviewed faces" in response.json()["detail"]

    reviewed_faces(staff_user, 60)
    response = staff_api.post("/api/v1/training-jobs/", {"use_reference_data": False}, format="json")
    assert response.status_code == 201
    job = response.json()
    assert (
        job["state"] == "queued"
        and job["state_display"] == "Queued"
        and job["base_version"] == "tiny-1"
        and job["requested_by"] == "admin"
    )
    assert job["progress_summary"] == "waiting for the worker" and job["fraction_done"] is None

    second = staff_api.post("/api/v1/training-jobs/", {}, format="json")
    assert second.status_code == 409 and "one job runs at a time" in second.json()["detail"]
    assert staff_api.get("/api/v1/training-jobs/").json()["count"] == 1
    assert staff_api.get(f"/api/v1/training-jobs/{job['id']}/").json()["id"] == job["id"]

    cancelled = staff_api.post(f"/api/v1/training-jobs/{job['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = staff_api.post(f"/api/v1/training-jobs/{job['id']}/cancel/")
    assert again.status_code == 409
    assert again.json() == {"detail": f"Training job {job['id']} has already ended: it was cancelled."}
    assert staff_api.post("/api/v1/training-jobs/999/cancel/").status_code == 404


def test_the_api_refuses_a_base_version_that_does_not_exist(tiny_active, staff_api, staff_user):
    reviewed_faces(staff_user, 60)
    response = staff_api.post("/api/v1/training-jobs/", {"base_version": "tiny-9"}, format="json")
    assert response.status_code == 400 and "base_version" in response.json()


def test_a_running_jobs_progress_reads_as_a_bar_and_a_line(tiny_active, staff_api, staff_user):
    job = TrainingJob.objects.create(
        requested_by=staff_user,
        base_version=tiny_active,
        state="running",
        progress={
            "phase": "training",
            "epoch": 2,
            "epochs": 4,
            "step": 5,
            "steps": 10,
            "loss": 1.23456,
            "validation_accuracy": 0.615,
            "seconds_left": 65,
            "images_per_second": 90.0,
        },
    )
    assert job.fraction_done == pytest.approx(15 / 40)
    assert job.progress_summary == "epoch 2 of 4, loss 1.235, validation 61.5%, 1 min 5 s left"
    data = staff_api.get(f"/api/v1/training-jobs/{job.pk}/").json()
    assert data["fraction_done"] == pytest.approx(0.375) and data["progress_summary"] == job.progress_summary


def test_activating_the_active_version_again_is_refused_and_records_nothing(tiny_active, staff_client, staff_api):
    activated_at = ModelVersion.objects.get(version="tiny-1").activated_at

    response = staff_api.post("/api/v1/models/tiny-1/activate/")
    assert response.status_code == 409 and response.json()["detail"] == "tiny-1 is already the active model version."
    page = staff_client.get(f"/staff/training/versions/{tiny_active.pk}/activate/").content.decode()
    assert "tiny-1 is already the active model version." in page and "Activate tiny-1</button>" not in page
    response = staff_client.post(f"/staff/training/versions/{tiny_active.pk}/activate/", follow=True)
    assert "tiny-1 is already the active model version." in response.content.decode()

    # Only its registration is on record, and it still says when it really went live.
    assert [(row.model_version.version, row.reason) for row in ModelActivation.objects.all()] == [
        ("tiny-1", "registered")
    ]
    assert ModelVersion.objects.get(version="tiny-1").activated_at == activated_at


def test_activating_the_active_version_whose_folder_was_repaired_clears_its_problem_and_records_nothing(
    tiny_active, staff_api
):
    services.model_version_fail(model_version=tiny_active, problem="its weights were damaged")

    response = staff_api.post("/api/v1/models/tiny-1/activate/")

    assert response.status_code == 200 and response.json()["is_active"] is True
    assert ModelVersion.objects.get(version="tiny-1").problem == ""
    assert ModelActivation.objects.count() == 1


def test_rollback_is_one_click_on_the_page_and_one_call_in_the_api(
    tiny_active, earlier_version, staff_client, staff_api, settings
):
    response = staff_client.post(f"/staff/training/versions/{earlier_version.pk}/activate/", follow=True)
    assert "tiny-0 is now the active model version." in response.content.decode()
    assert ModelVersion.objects.get(state="active") == earlier_version

    response = staff_api.post("/api/v1/models/tiny-1/activate/")
    assert response.status_code == 200 and response.json()["is_active"] is True
    assert ModelVersion.objects.get(state="active") == tiny_active
    assert staff_api.post("/api/v1/models/tiny-9/activate/").status_code == 404

    # Each activation is on record: what replaced what, how, by whom; on the page and in the API.
    history = staff_api.get("/api/v1/model-activations/").json()["results"]
    assert [(row["model_version"], row["replaced"], row["reason"], row["activated_by"]) for row in history] == [
        ("tiny-1", "tiny-0", "manual", "admin"),
        ("tiny-0", "tiny-1", "manual", "admin"),
        ("tiny-1", None, "registered", None),
    ]
    assert ModelVersion.objects.get(version="tiny-0").state == "previous"
    page = staff_client.get("/staff/training/").content.decode()
    assert "activated by hand, by admin" in page and "previous (was active)" in page
    assert staff_api.get("/api/v1/models/").json()[0]["state_display"]

    shutil.rmtree(settings.EMOTIONSITE_MODEL_DIR / "tiny-0")
    response = staff_api.post("/api/v1/models/tiny-0/activate/")
    assert response.status_code == 409 and "its folder tiny-0 is missing" in response.json()["detail"]
    assert ModelVersion.objects.get(state="active") == tiny_active


def test_the_admin_retrains_from_the_selected_version(tiny_active, earlier_version, admin_client, admin_user):
    reviewed_faces(admin_user, 60)
    changelist = "/admin/classifier/modelversion/"
    response = admin_client.post(
        changelist, {"action": "retrain", "_selected_action": [earlier_version.pk]}, follow=True
    )
    job = TrainingJob.objects.get()
    assert job.base_version == earlier_version
    assert f"Training job {job.pk} is queued." in response.content.decode()

    response = admin_client.post(changelist, {"action": "retrain", "_selected_action": [tiny_active.pk]}, follow=True)
    assert "one job runs at a time" in response.content.decode() and TrainingJob.objects.count() == 1

    response = admin_client.post(
        "/admin/classifier/trainingjob/", {"action": "cancel", "_selected_action": [job.pk]}, follow=True
    )
    assert TrainingJob.objects.get().state == "cancelled"
    assert admin_client.get(f"/admin/classifier/trainingjob/{job.pk}/change/").status_code == 200


def test_a_version_that_cannot_load_is_refused_as_a_base(tiny_active, staff_user):
    reviewed_faces(staff_user, 60)
    services.model_version_fail(model_version=tiny_active, problem="inference.pdiparams is missing")
    with pytest.raises(services.RetrainRefused, match="tiny-1 cannot be loaded"):
        services.retrain_request(requested_by=staff_user)


def test_a_job_whose_worker_stopped_reads_as_failed_without_a_write(tiny_active, staff_client, staff_api, staff_user):
    reviewed_faces(staff_user, 60)
    job = services.retrain_request(requested_by=staff_user)
    silent_since = timezone.now() - timedelta(seconds=settings.EMOTIONSITE_RETRAIN.stale_seconds + 60)
    TrainingJob.objects.filter(pk=job.pk).update(state="running", started_at=silent_since, heartbeat_at=silent_since)

    listed = staff_api.get("/api/v1/training-jobs/").json()["results"][0]
    page = staff_client.get("/staff/training/").content.decode()
    staff_client.get("/admin/classifier/trainingjob/")

    assert listed["state"] == "failed" and listed["error"].startswith("The worker stopped: no sign of life since")
    assert 'data-state="failed"' in page and "The worker stopped" in page
    assert TrainingJob.objects.get(pk=job.pk).state == "running"  # the GETs wrote nothing
    # The next request marks it failed for good, and may then run.
    assert services.retrain_request(requested_by=staff_user).state == "queued"
    assert TrainingJob.objects.get(pk=job.pk).state == "failed"


def test_the_job_endpoint_applies_the_stale_rule_to_a_job_and_its_cancel(
    tiny_active, staff_client, staff_api, staff_user
):
    reviewed_faces(staff_user, 60)
    job = services.retrain_request(requested_by=staff_user)
    silent_since = timezone.now() - timedelta(seconds=settings.EMOTIONSITE_RETRAIN.stale_seconds + 60)
    TrainingJob.objects.filter(pk=job.pk).update(state="running", started_at=silent_since, heartbeat_at=silent_since)

    shown = staff_api.get(f"/api/v1/training-jobs/{job.pk}/").json()
    assert (shown["state"], shown["state_display"], shown["progress_summary"]) == ("failed", "Failed", "")
    assert shown["error"].startswith("The worker stopped: no sign of life since")
    assert TrainingJob.objects.get(pk=job.pk).state == "running"  # a GET writes nothing

    # Its worker is gone, so nobody would stop it: a cancel says it has failed, and writes that down.
    cancel = staff_api.post(f"/api/v1/training-jobs/{job.pk}/cancel/")
    assert cancel.status_code == 409
    assert cancel.json() == {"detail": f"Training job {job.pk} has already ended: it failed."}
    page = staff_client.post(f"/staff/training/jobs/{job.pk}/cancel/", follow=True).content.decode()
    assert f"Training job {job.pk} has already ended: it failed." in page
    stored = TrainingJob.objects.get(pk=job.pk)
    assert (stored.state, stored.cancel_requested) == ("failed", False)
    assert stored.error.startswith("The worker stopped: no sign of life since")


def test_activate_asks_first_and_retrain_waits_for_the_running_job(
    tiny_active, earlier_version, staff_client, staff_user
):
    confirm = staff_client.get(f"/staff/training/versions/{earlier_version.pk}/activate/").content.decode()
    assert "Activate tiny-0?" in confirm and "in place of tiny-1" in confirm
    assert ModelVersion.objects.get(state="active") == tiny_active  # asking changed nothing

    reviewed_faces(staff_user, 60)
    job = services.retrain_request(requested_by=staff_user)
    page = staff_client.get("/staff/training/").content.decode()
    assert f"Training job {job.pk} is queued: one job runs at a time." in page
    assert '<button type="submit" id="retrain" disabled>' in page
