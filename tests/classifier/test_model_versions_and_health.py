import json
import shutil
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from classifier import inference, services
from classifier.models import Capture, ModelActivation, ModelVersion
from tests.classifier.corpus import face_photo_bytes, make_capture, nothing_stored, two_version_models, upload
from tests.site_processes import ROOT, deployed_environment


@pytest.fixture
def two_versions_dir(tmp_path: Path, tiny_models_dir: Path, settings) -> Path:
    """tiny-1 and a later tiny-2 (the same weights under another version name) in a fresh models folder."""
    models_dir = two_version_models(tmp_path / "models", tiny_models_dir)
    (models_dir / ".tiny-3-half-written").mkdir()
    settings.EMOTIONSITE_MODEL_DIR = models_dir
    return models_dir


def register(*args: str) -> str:
    out = StringIO()
    call_command("register_models", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_register_models_is_idempotent_and_activates_the_newest(db, two_versions_dir):
    output = register()
    assert "Registered model version tiny-1" in output and "Active model version: tiny-2" in output
    assert register() == "Active model version: tiny-2\n"
    assert ModelVersion.objects.count() == 2
    tiny_2 = ModelVersion.objects.get(version="tiny-2")
    assert tiny_2.state == "active" and tiny_2.parent.version == "tiny-1" and tiny_2.path == "tiny-2"
    assert "validation_accuracy" in tiny_2.metrics and tiny_2.training["epochs"] == 3


def test_when_the_active_versions_folder_is_gone_registering_activates_the_newest_left(db, two_versions_dir):
    register("--activate", "tiny-1")
    shutil.rmtree(two_versions_dir / "tiny-1")  # e.g. an upgrade shipped a new model in its place

    assert "Active model version: tiny-2" in register()
    assert ModelVersion.objects.get(version="tiny-1").state == "previous"  # kept: its faces still name it


def test_activating_another_version_is_followed_by_the_next_capture(user, two_versions_dir, media_dir):
    register()
    first = make_capture(user)
    assert first.model_version.version == "tiny-2" and first.faces.get().model_version.version == "tiny-2"
    assert inference.predictor_for(first.model_version).version == "tiny-2"

    assert "Active model version: tiny-1" in register("--activate", "tiny-1")
    assert ModelVersion.objects.get(version="tiny-2").state == "previous"
    second = make_capture(user)
    assert second.model_version.version == "tiny-1" and second.faces.get().model_version.version == "tiny-1"
    assert inference._loaded[0] == "tiny-1"


def test_a_fresh_site_registers_its_models_on_first_use(user, two_versions_dir, media_dir):
    assert not ModelVersion.objects.exists()
    assert make_capture(user).model_version.version == "tiny-2"


def corrupt_copy(models_dir: Path, source: str, version: str) -> Path:
    """A copy of a version folder under a new version name, its parameters overwritten with junk."""
    broken = models_dir / version
    shutil.copytree(models_dir / source, broken)
    metadata = json.loads((broken / "model.json").read_text())
    metadata.update(version=version, created_at="2100-01-01T00:00:00+00:00")
    (broken / "model.json").write_text(json.dumps(metadata))
    (broken / "inference.pdiparams").write_bytes(b"not parameters")
    return broken


def test_a_corrupt_active_folder_at_start_up_is_reported_and_the_last_good_version_takes_over(
    client, admin_client, user, two_versions_dir, media_dir, caplog
):
    corrupt_copy(two_versions_dir, "tiny-1", "tiny-broken")
    register()
    services.model_version_activate(model_version=ModelVersion.objects.get(version="tiny-broken"))

    output = register()  # what every start runs
    assert "Active model version: tiny-2" in output
    # Its parameters are junk: model.json's checksum tells before Paddle would.
    assert "Model version tiny-broken cannot be used" in output and "inference.pdiparams is not the file" in output
    broken = ModelVersion.objects.get(version="tiny-broken")
    assert broken.state == "previous"
    assert "inference.pdiparams is not the file model.json records" in broken.problem

    health = client.get("/healthz").json()
    assert health["status"] == "degraded" and health["model_version"] == "tiny-2"
    assert health["model_problems"] == ["tiny-broken"]  # why, with its server paths, is for the admin
    page = admin_client.get("/admin/classifier/modelversion/").content.decode()
    assert "Model version tiny-broken cannot be used" in page
    assert make_capture(user).model_version.version == "tiny-2"


def test_a_folder_corrupted_while_the_site_runs_falls_back_on_the_next_upload(user_client, two_versions_dir, media_dir):
    corrupt_copy(two_versions_dir, "tiny-1", "tiny-broken")
    register("--activate", "tiny-1")  # loads tiny-1 in this process
    # Activated behind the site's back: the next upload is what finds it broken.
    ModelVersion.objects.filter(state="active").update(state="candidate")
    ModelVersion.objects.filter(version="tiny-broken").update(state="active")

    response = user_client.post("/", {"image": upload("me.jpg", face_photo_bytes())})
    assert response.status_code == 302
    assert Capture.objects.get().model_version.version == "tiny-1"  # the one that served before it
    assert ModelVersion.objects.get(version="tiny-broken").problem


def test_weights_changed_without_changing_size_are_refused_and_the_last_good_version_serves(
    client, user_client, two_versions_dir, media_dir, monkeypatch
):
    register()  # tiny-2 active
    monkeypatch.setattr(inference, "_loaded", None)  # as in a process that has not loaded it yet
    parameters = two_versions_dir / "tiny-2" / "inference.pdiparams"
    data = bytearray(parameters.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 400] = bytes(400)  # Paddle loads this, and predicts a little off
    parameters.write_bytes(bytes(data))

    response = user_client.post("/", {"image": upload("me.jpg", face_photo_bytes())})

    assert response.status_code == 302
    assert Capture.objects.get().model_version.version == "tiny-1"
    broken = ModelVersion.objects.get(version="tiny-2")
    assert "inference.pdiparams is not the file model.json records (its SHA-256 differs)" in broken.problem
    assert client.get("/healthz").json()["model_problems"] == ["tiny-2"]


def test_when_no_version_can_be_loaded_uploads_say_the_model_is_unavailable(
    user_client, client, two_versions_dir, media_dir, caplog, monkeypatch
):
    monkeypatch.setattr(inference, "_loaded", None)  # another test's tiny-2, loaded before we broke ours
    for version in ("tiny-1", "tiny-2"):
        (two_versions_dir / version / "inference.pdiparams").write_bytes(b"not parameters")
    register()

    response = user_client.post("/", {"image": upload("me.jpg", face_photo_bytes())})
    assert response.status_code == 503
    assert "model is not available" in response.content.decode()
    assert nothing_stored(media_dir)
    assert any(
        record.levelname == "ERROR" and "no other version can take over" in record.getMessage()
        for record in caplog.records
    )
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "error"
    assert set(health.json()["model_problems"]) == {"tiny-1", "tiny-2"}


def test_a_missing_active_folder_is_named_on_healthz(client, db, two_versions_dir):
    register()
    shutil.rmtree(two_versions_dir / "tiny-2")
    register()
    health = client.get("/healthz").json()
    assert health["model_version"] == "tiny-1"
    assert health["model_problems"] == ["tiny-2"]
    assert ModelVersion.objects.get(version="tiny-2").problem == f"its folder {two_versions_dir / 'tiny-2'} is missing"


def test_activating_an_unknown_version_fails_clearly(db, two_versions_dir):
    with pytest.raises(Exception, match="No model version 'tiny-9'"):
        register("--activate", "tiny-9")


def test_only_one_version_can_be_active(db, model_version):
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(version="other", path="other", state="active")


def test_a_version_that_predicted_faces_cannot_be_deleted(user, model_version, media_dir):
    make_capture(user)
    with pytest.raises(ProtectedError):
        model_version.delete()


def test_healthz_without_any_model_is_503(client, db, settings, tmp_path):
    settings.EMOTIONSITE_MODEL_DIR = tmp_path / "none"
    services.worker_heartbeat(worker_id="worker-1")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "database": "ok",
        "model_version": None,
        "worker": "ok",
        "media": "ok",
    }


def test_a_fallback_returns_to_the_version_that_served_last_not_the_newest(db, two_versions_dir, settings):
    register()  # tiny-2, the newest, is active
    services.model_version_activate(model_version=ModelVersion.objects.get(version="tiny-1"))  # a rollback
    shutil.copytree(two_versions_dir / "tiny-1", two_versions_dir / "tiny-1b")
    metadata = json.loads((two_versions_dir / "tiny-1b" / "model.json").read_text())
    (two_versions_dir / "tiny-1b" / "model.json").write_text(json.dumps(metadata | {"version": "tiny-1b"}))
    register("--activate", "tiny-1b")
    shutil.rmtree(two_versions_dir / "tiny-1b")

    assert "Active model version: tiny-1" in register()  # served before tiny-1b; tiny-2 was rolled back from


def test_a_retrained_folder_registers_with_its_verdict(db, two_versions_dir):
    metadata = json.loads((two_versions_dir / "tiny-2" / "model.json").read_text())
    decision = "Rejected: accuracy on 40 held-out reviewed faces 50.0% against 60.0% (worse by more than the margin)"
    (two_versions_dir / "tiny-2" / "model.json").write_text(
        json.dumps(metadata | {"promoted": False, "decision": decision})
    )
    register()
    tiny_2 = ModelVersion.objects.get(version="tiny-2")
    assert tiny_2.state == "rejected" and tiny_2.decision == decision
    assert ModelVersion.objects.get(state="active").version == "tiny-1"  # a rejected version never goes live


def test_the_model_list_names_problems_but_not_paths_to_users(user, staff_user, two_versions_dir):
    from rest_framework.test import APIClient

    register()
    services.model_version_fail(model_version=ModelVersion.objects.get(version="tiny-1"), problem="/srv/x is gone")
    ModelVersion.objects.filter(version="tiny-2").update(training={"reference_data": "/srv/fer2013.csv.gz"})
    api = APIClient()
    for who, problem, training in ((user, "cannot be used", {}), (staff_user, "/srv/x is gone", None)):
        api.force_authenticate(who)
        versions = {entry["version"]: entry for entry in api.get("/api/v1/models/").json()}
        assert versions["tiny-1"]["problem"] == problem
        assert versions["tiny-2"]["training"] == (
            training if training is not None else {"reference_data": "/srv/fer2013.csv.gz"}
        )


def test_an_upgrade_that_ships_a_newer_version_of_the_active_one_puts_it_live(db, two_versions_dir):
    shutil.move(two_versions_dir / "tiny-2", two_versions_dir.parent / "tiny-2")  # the site before the upgrade
    register()
    assert ModelVersion.objects.get(state="active").version == "tiny-1"

    shutil.move(two_versions_dir.parent / "tiny-2", two_versions_dir / "tiny-2")  # the upgrade ships tiny-2
    assert "Active model version: tiny-2" in register()

    tiny_1 = ModelVersion.objects.get(version="tiny-1")
    assert tiny_1.state == "previous"
    assert tiny_1.replaced_by.get().model_version.version == "tiny-2"
    assert tiny_1.replaced_by.get().reason == "registered"


def test_a_newer_version_of_another_version_does_not_replace_the_active_one(db, two_versions_dir):
    shutil.move(two_versions_dir / "tiny-2", two_versions_dir.parent / "tiny-2")
    shutil.copytree(two_versions_dir / "tiny-1", two_versions_dir / "tiny-0")
    metadata = json.loads((two_versions_dir / "tiny-0" / "model.json").read_text())
    (two_versions_dir / "tiny-0" / "model.json").write_text(json.dumps(metadata | {"version": "tiny-0"}))
    register("--activate", "tiny-0")  # staff chose tiny-0

    shutil.move(two_versions_dir.parent / "tiny-2", two_versions_dir / "tiny-2")  # made from tiny-1
    assert "Active model version: tiny-0" in register()


def test_healthz_reports_a_broken_active_version_without_switching(client, user_client, two_versions_dir, media_dir):
    register()  # tiny-2 active
    inference._loaded = None  # as in a process that has not loaded it yet
    (two_versions_dir / "tiny-2" / "inference.pdiparams").write_bytes(b"not parameters")

    health = client.get("/healthz")

    assert health.status_code == 503 and health.json()["model_problems"] == ["tiny-2"]
    assert ModelVersion.objects.get(state="active").version == "tiny-2"  # a GET changes nothing
    assert not ModelVersion.objects.exclude(problem="").exists()
    # The next prediction records the problem and falls back, as before.
    assert user_client.post("/", {"image": upload("me.jpg", face_photo_bytes())}).status_code == 302
    assert ModelVersion.objects.get(state="active").version == "tiny-1"


def test_a_retrained_folder_whose_job_died_is_not_put_live_on_registering(db, two_versions_dir):
    shutil.move(two_versions_dir / "tiny-2", two_versions_dir.parent / "tiny-2")
    register()  # tiny-1 active
    # A worker killed between moving its version into place and writing the row leaves this behind.
    shutil.move(two_versions_dir.parent / "tiny-2", two_versions_dir / "tiny-2")
    metadata = json.loads((two_versions_dir / "tiny-2" / "model.json").read_text())
    metadata |= {"promoted": True, "training": {"training_job": 7}}
    (two_versions_dir / "tiny-2" / "model.json").write_text(json.dumps(metadata))

    assert "Active model version: tiny-1" in register()
    assert ModelVersion.objects.get(version="tiny-2").state == "candidate"


REGISTERING_PROCESSES = 4


@pytest.mark.slow
def test_register_models_started_by_several_processes_at_once_registers_each_version_once(
    postgres_database, tmp_path, tiny_models_dir
):
    """Several containers start together (`docker compose up --scale web=4`), each running `register_models`
    on one fresh PostgreSQL database: each must start, each version be registered once, and one be active."""
    import psycopg

    environment = deployed_environment(
        database_url=postgres_database,
        model_dir=two_version_models(tmp_path / "models", tiny_models_dir),
        media_dir=tmp_path / "media",
    )
    with psycopg.connect(postgres_database, autocommit=True) as watcher:
        with psycopg.connect(postgres_database) as gate, gate.transaction():
            # Each process waits on this lock at its first look at the versions table; then all go at once.
            gate.execute("LOCK TABLE classifier_modelversion IN ACCESS EXCLUSIVE MODE")
            processes = [
                subprocess.Popen(
                    [sys.executable, "manage.py", "register_models"],
                    cwd=ROOT,
                    env=environment,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for _ in range(REGISTERING_PROCESSES)
            ]
            deadline = time.monotonic() + 60
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            while watcher.execute(waiting).fetchone()[0] < REGISTERING_PROCESSES:
                assert all(process.poll() is None for process in processes), [p.communicate() for p in processes]
                assert time.monotonic() < deadline, "the processes never all reached the versions table"
                time.sleep(0.05)
        outcomes = [(process.wait(timeout=120), process.stdout.read()) for process in processes]
        for process in processes:
            process.stdout.close()

        assert [status for status, _ in outcomes] == [0] * REGISTERING_PROCESSES, outcomes
        assert all("Active model version: tiny-2" in output for _, output in outcomes), outcomes
        versions = watcher.execute("SELECT version, state FROM classifier_modelversion ORDER BY version").fetchall()
        assert versions == [("tiny-1", "candidate"), ("tiny-2", "active")]
        assert watcher.execute("SELECT count(*) FROM classifier_modelactivation").fetchone() == (1,)


def test_two_processes_finding_the_active_version_broken_both_end_on_its_fallback(db, two_versions_dir):
    register()  # tiny-2 active
    # Each process holds its own copy of the active version when its load fails.
    first, second = (ModelVersion.objects.get(state="active") for _ in range(2))

    assert services.model_version_fail(model_version=first, problem="its weights were damaged").version == "tiny-1"
    assert services.model_version_fail(model_version=second, problem="its weights were damaged").version == "tiny-1"

    assert ModelVersion.objects.get(state="active").version == "tiny-1"
    assert [activation.reason for activation in ModelActivation.objects.filter(model_version__version="tiny-1")] == [
        "fallback"
    ]
