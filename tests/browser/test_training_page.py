"""The staff training page in a real browser: a running job's row follows the worker, reloads when it ends, cancels."""

import shutil

import pytest
from django.utils import timezone

from accounts.models import User
from classifier.models import ModelVersion, TrainingJob
from tests.classifier.retrain_site import retrain_site

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or fails in CI, saying so
    expect = None

pytestmark = pytest.mark.slow

# The page polls every 2 s: a few polls' worth, well under the stale check's 300 s (TEST_RETRAIN).
POLLED_MS = 10_000


def training_progress(*, epoch: int, step: int, validation_accuracy: float | None) -> dict:
    """What the worker writes while it trains (classifier.retraining._JobChannel.on_progress)."""
    return {
        "phase": "training",
        "epoch": epoch,
        "epochs": 3,
        "step": step,
        "steps": 10,
        "loss": 1.5 - 0.25 * epoch,
        "validation_accuracy": validation_accuracy,
        "seconds_left": 95 - 30 * epoch,
        "images_per_second": 120.0,
    }


@pytest.fixture
def tiny_active(site: str, settings, tmp_path, tiny_models_dir) -> ModelVersion:
    """The live site with its own models folder, tiny-1 active, and the test's retrain settings."""
    return retrain_site(settings, tmp_path, tiny_models_dir)


@pytest.fixture
def running_job(tiny_active: ModelVersion, staff_user: User) -> TrainingJob:
    """A job the worker is training, epoch 1 of 3, with a fresh heartbeat."""
    now = timezone.now()
    return TrainingJob.objects.create(
        requested_by=staff_user,
        base_version=tiny_active,
        state=TrainingJob.State.RUNNING,
        progress=training_progress(epoch=1, step=4, validation_accuracy=None),
        started_at=now,
        heartbeat_at=now,
    )


def test_a_running_job_follows_the_worker_then_the_page_reloads_when_it_ends(
    open_page, staff_user: User, running_job: TrainingJob, tiny_active: ModelVersion, settings
) -> None:
    page = open_page(user=staff_user)
    page.goto("/staff/training/")
    row = page.locator(f"tr[data-job-id='{running_job.pk}']")
    expect(row).to_have_attribute("data-state", "running")
    expect(row.locator(".job-state")).to_have_text("Running")
    expect(row.locator(".job-progress")).to_have_text("epoch 1 of 3, loss 1.250, 1 min 5 s left")
    bar = row.locator("progress")
    before = bar.evaluate("bar => bar.value")
    assert before == pytest.approx(4 / 30)
    page.evaluate("window.__notReloaded = true")

    # The worker's next write, as _JobChannel.report makes it.
    TrainingJob.objects.filter(pk=running_job.pk).update(
        progress=training_progress(epoch=2, step=5, validation_accuracy=0.6), heartbeat_at=timezone.now()
    )
    expect(row.locator(".job-progress")).to_contain_text("epoch 2 of 3", timeout=POLLED_MS)
    expect(row.locator(".job-progress")).to_have_text("epoch 2 of 3, loss 1.000, validation 60.0%, 35 s left")
    after = bar.evaluate("bar => bar.value")
    assert after == pytest.approx(15 / 30) and after > before
    expect(row.locator(".job-state")).to_have_text("Running")
    assert page.evaluate("window.__notReloaded") is True

    # The worker ends: a new version, registered from its folder, and the job succeeded with it.
    models_dir = settings.EMOTIONSITE_MODEL_DIR
    shutil.copytree(models_dir / "tiny-1", models_dir / "tiny-2")
    made = ModelVersion.objects.create(
        version="tiny-2", path="tiny-2", state=ModelVersion.State.REJECTED, parent=tiny_active
    )
    TrainingJob.objects.filter(pk=running_job.pk).update(
        state=TrainingJob.State.SUCCEEDED, model_version=made, heartbeat_at=timezone.now(), finished_at=timezone.now()
    )
    # Only a reload renders the row's data-state; the script changes the state cell alone.
    expect(row).to_have_attribute("data-state", "succeeded", timeout=POLLED_MS)
    assert page.evaluate("window.__notReloaded") is None
    expect(row.locator(".job-state")).to_have_text("Succeeded")
    expect(row.locator(".job-result")).to_have_text("tiny-2 (rejected)")
    assert bar.evaluate("bar => bar.value") == 1
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.locator("table.versions")).to_contain_text("tiny-2")


def test_cancelling_a_running_job_asks_the_worker_to_stop(
    open_page, staff_user: User, running_job: TrainingJob
) -> None:
    page = open_page(user=staff_user)
    page.goto("/staff/training/")
    row = page.locator(f"tr[data-job-id='{running_job.pk}']")
    row.get_by_role("button", name="Cancel").click()

    expect(page.get_by_role("status")).to_contain_text(f"Training job {running_job.pk} will stop within a few seconds.")
    running_job.refresh_from_db()
    assert running_job.cancel_requested is True and running_job.state == TrainingJob.State.RUNNING
    # Still running until the worker reads the flag; its line says it is stopping.
    expect(row.locator(".job-state")).to_have_text("Running")
    expect(row.locator(".job-progress")).to_contain_text("stopping")
