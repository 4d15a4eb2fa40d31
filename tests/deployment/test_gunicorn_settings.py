"""gunicorn.conf.py's hooks, run as gunicorn runs them in each web process it starts, on the real database."""

import runpy
import signal
from pathlib import Path

import pytest

import ml.runtime
from classifier import inference
from classifier.models import ModelVersion

GUNICORN_SETTINGS = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


@pytest.fixture
def post_worker_init(monkeypatch: pytest.MonkeyPatch):
    """The hook, with what it does to the whole process (signals, the allocator) kept from the test run's."""
    monkeypatch.setattr(signal, "signal", lambda *_: None)
    monkeypatch.setattr(ml.runtime, "give_large_allocations_back", lambda: True)
    monkeypatch.setattr(inference, "_loaded", None)  # as in a process just started
    return runpy.run_path(str(GUNICORN_SETTINGS))["post_worker_init"]


# Transactional: the hook closes the process's connections, as it must outside a test.
def test_a_web_process_loads_the_active_model_before_it_serves(transactional_db, model_version, post_worker_init):
    post_worker_init(worker=None)

    version, predictor = inference._loaded
    assert version == model_version.version == predictor.version


def test_a_web_process_starts_without_an_active_model_and_loads_nothing(transactional_db, post_worker_init):
    post_worker_init(worker=None)

    assert inference._loaded is None
    assert not ModelVersion.objects.exists()  # read-only: registering is the first request's business


def test_a_web_process_starts_with_a_broken_model_and_leaves_it_to_the_first_request(
    transactional_db, model_version, post_worker_init
):
    model_version.path = "missing-folder"
    model_version.save(update_fields=["path"])

    post_worker_init(worker=None)

    assert inference._loaded is None
    model_version.refresh_from_db()
    assert model_version.problem == "" and model_version.state == ModelVersion.State.ACTIVE
