"""/healthz: what a load balancer and a monitor read. Each part (database, model, worker, media) is reported;
a part that fails makes it "degraded", and only a site that cannot serve at all is a 503."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from classifier import services
from classifier.models import WorkerHeartbeat
from tests.conftest import db_worker_running, unwritable


def test_a_site_with_every_part_working_is_ok(client, model_version):
    services.worker_heartbeat(worker_id="worker-1")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "model_version": "tiny-1",
        "worker": "ok",
        "media": "ok",
    }


def test_no_worker_is_degraded_and_says_so(client, model_version):
    never = client.get("/healthz")
    assert never.status_code == 200
    assert (never.json()["status"], never.json()["worker"]) == (
        "degraded",
        "no heartbeat yet: is `python manage.py db_worker` running?",
    )

    services.worker_heartbeat(worker_id="worker-1")
    silent_since = timezone.now() - timedelta(minutes=5)
    WorkerHeartbeat.objects.update(beat_at=silent_since)
    silent = client.get("/healthz").json()
    assert silent["status"] == "degraded"
    assert silent["worker"] == f"no heartbeat since {silent_since:%Y-%m-%d %H:%M:%S} UTC"


def test_an_unwritable_media_folder_is_degraded(client, model_version, media_dir):
    services.worker_heartbeat(worker_id="worker-1")
    with unwritable(media_dir):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["media"]) == ("degraded", "not writable")
    # A fresh site has no media folder yet: uploads make it, so that is no fault.
    media_dir.rmdir()
    assert client.get("/healthz").json()["media"] == "ok"


def test_healthz_is_read_only_and_cheap(client, model_version, django_assert_max_num_queries):
    services.worker_heartbeat(worker_id="worker-1")
    client.get("/healthz")  # the model loads once per process
    with django_assert_max_num_queries(4):
        assert client.get("/healthz").json()["status"] == "ok"
    assert client.post("/healthz").status_code == 405


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_counts_as_alive_and_one_that_stopped_does_not(client, settings, tiny_models_dir, media_dir):
    """A real `manage.py db_worker` with nothing to do: it beats all the same; stopped, it is gone at once."""
    settings.EMOTIONSITE_MODEL_DIR = tiny_models_dir
    services.model_versions_register()
    with db_worker_running(settings, media_dir) as worker:

        def worker_status_becomes(expected: str, within: float) -> None:
            deadline = time.monotonic() + within
            while (status := client.get("/healthz").json()["worker"]) != expected:
                assert worker.poll() is None, worker.stderr.read().decode()
                assert time.monotonic() < deadline, f"the worker still reads {status!r}"
                time.sleep(0.2)

        worker_status_becomes("ok", within=30)
        # Idle, it keeps beating: a heartbeat made old comes back fresh within one beat.
        WorkerHeartbeat.objects.update(beat_at=timezone.now() - timedelta(hours=1))
        assert client.get("/healthz").json()["status"] == "degraded"
        worker_status_becomes("ok", within=15)

        worker.terminate()
        assert worker.wait(timeout=10) == 0
        assert client.get("/healthz").json()["worker"] == "no heartbeat yet: is `python manage.py db_worker` running?"
