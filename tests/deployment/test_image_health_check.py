"""The image's health check, which Docker and compose.yaml's proxy wait on, and how its one-container role stops."""

import contextlib
import os
import signal
import sqlite3
import time

import pytest

from tests.site_processes import (
    free_port,
    image_environment,
    nginx_required,
    start_entrypoint,
    stop,
    wait_until_healthy,
)


@pytest.mark.slow
def test_the_health_check_passes_whatever_host_names_the_site_answers_to(tmp_path):
    """A site deployed for its own name only: the check asks 127.0.0.1, which that name leaves out."""
    nginx_required()
    environment = image_environment(tmp_path, free_port(), ALLOWED_HOSTS="faces.example.org")
    server = start_entrypoint("web", environment=environment, log=tmp_path / "server.log")
    try:
        deadline = time.monotonic() + 120
        while True:
            check = start_entrypoint("healthcheck", environment=environment, log=tmp_path / "healthcheck.log")
            if check.wait(timeout=30) == 0:
                break
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "healthcheck.log").read_text()[-2000:]
            time.sleep(0.5)
    finally:
        stop(server)


@pytest.mark.slow
def test_the_all_role_stops_its_worker_too_and_waits_for_it(tmp_path):
    """`docker stop` on the one-container role: its db_worker must get the TERM (and fail a running task at
    once, as a worker of its own does), not be left behind for the kernel's KILL."""
    nginx_required()
    database = tmp_path / "db.sqlite3"  # image_environment's
    port = free_port()
    environment = image_environment(tmp_path, port)
    container = start_entrypoint("all", environment=environment, log=tmp_path / "all.log")
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/healthz", container)
        deadline = time.monotonic() + 60
        while not heartbeats(database):
            assert time.monotonic() < deadline, "the worker never said it was alive"
            time.sleep(0.2)

        container.terminate()
        assert container.wait(timeout=30) is not None
        # Nothing of the container is left running, and the worker ended as told: its heartbeat row is gone.
        with pytest.raises(ProcessLookupError):
            os.killpg(container.pid, 0)
        assert heartbeats(database) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(container.pid, signal.SIGKILL)
        container.wait()


def heartbeats(database) -> int:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return connection.execute("SELECT count(*) FROM classifier_workerheartbeat").fetchone()[0]
