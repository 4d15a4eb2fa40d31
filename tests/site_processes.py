"""Real site processes for the tests that need more than the test client: `manage.py` commands, gunicorn
servers and workers started as the README and the Docker image start them, on a PostgreSQL database of
their own (a throwaway cluster, scripts/throwaway_postgres.py) or on the test database.

Without PostgreSQL's server programs the PostgreSQL tests skip, and without nginx those of the proxy in front
of gunicorn, unless EMOTIONSITE_REQUIRE_POSTGRES=1 or EMOTIONSITE_REQUIRE_NGINX=1 (CI): there they fail.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings

from scripts.throwaway_postgres import PostgresUnavailable, throwaway_postgres

ROOT = Path(__file__).resolve().parent.parent


def required_or_skip(variable: str, reason: str) -> NoReturn:
    """Skip, or fail where CI requires the missing part (it sets `variable` to 1)."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{variable}=1 but {reason}")
    pytest.skip(reason)


def database_url_of_the_tests() -> str:
    """The DATABASE_URL of the database the tests run on, for a process started beside them."""
    database = django_settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{database['NAME']}"
    credentials = quote(database["USER"], safe="")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"], safe="")
    port = f":{database['PORT']}" if database["PORT"] else ""
    return f"postgres://{credentials}@{quote(database['HOST'], safe='')}{port}/{database['NAME']}"


def deployed_environment(*, database_url: str, model_dir: Path, media_dir: Path, **more: str) -> dict[str, str]:
    """The environment of a site process as deployed: production settings on this database, models and media
    folders (tests/conftest.py's site_environment is that of a process on the test's own database)."""
    return os.environ | {
        "DEBUG": "false",
        "SECRET_KEY": "site-processes-test-key-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "EMOTIONSITE_MODEL_DIR": str(model_dir),
        "EMOTIONSITE_MEDIA_DIR": str(media_dir),
        # One process and one math thread each: several servers share this machine's two cores.
        "WEB_CONCURRENCY": "1",
        "OMP_NUM_THREADS": "1",
        **more,
    }


def manage(*arguments: str, environment: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python manage.py ARGUMENTS` to its end; fail the test, with its output, if it fails."""
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"manage.py {' '.join(arguments)} failed:\n{done.stdout}{done.stderr}"
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, *, timeout: float = 120) -> None:
    """Wait until `url` (a /healthz) answers 200; fail if the process ends first or time runs out. A proxy
    answers 502 until the gunicorn behind it is up."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"{process.args} ended with {process.returncode} before {url} answered"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer 200 within {timeout} s"
        time.sleep(0.1)


# Debian's nginx is in /usr/sbin, which a user's PATH may lack.
SYSTEM_PROGRAMS = "/usr/sbin"


def nginx_required() -> None:
    """Skip without nginx, unless EMOTIONSITE_REQUIRE_NGINX=1 (CI)."""
    if shutil.which("nginx", path=f"{os.environ.get('PATH', os.defpath)}{os.pathsep}{SYSTEM_PROGRAMS}") is None:
        required_or_skip("EMOTIONSITE_REQUIRE_NGINX", "nginx is not installed (apt install nginx)")


def image_environment(tmp_path: Path, port: int, **more: str) -> dict[str, str]:
    """The environment of one of the image's roles on a SQLite database, models and media of its own in
    `tmp_path`, answering on 127.0.0.1 and `port`."""
    return deployed_environment(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        model_dir=tmp_path / "models",
        media_dir=tmp_path / "media",
        EMOTIONSITE_LISTEN=f"127.0.0.1:{port}",
        **more,
    )


def start_image_web_role(tmp_path: Path, **more: str) -> tuple[subprocess.Popen, str]:
    """`docker-entrypoint.sh web` (nginx in front of gunicorn) on a SQLite database of its own in `tmp_path`,
    answering on 127.0.0.1 and a free port, once /healthz answers 200; the process and the base URL."""
    nginx_required()
    port = free_port()
    environment = image_environment(tmp_path, port, **more)
    server = start_entrypoint("web", environment=environment, log=tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{base}/healthz", server)
    except BaseException:
        stop(server)
        raise
    return server, base


def start(command: list[str], *, environment: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a site process from this checkout, with the virtual environment's programs first on the PATH
    (as they are in the image), its output in `log`, and a process group of its own for `stop`."""
    programs = os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", os.defpath), SYSTEM_PROGRAMS])
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment | {"PATH": programs},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_entrypoint(role: str, *, environment: dict[str, str], log: Path) -> subprocess.Popen:
    """`docker-entrypoint.sh ROLE` as the Docker image runs it, outside Docker."""
    return start([str(ROOT / "docker-entrypoint.sh"), role], environment=environment, log=log)


def stop(process: subprocess.Popen) -> None:
    """TERM, as `docker stop` does; after 10 s, KILL to its whole process group: a test leaves nothing behind."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for this test session, whose database `emotionsite` is migrated and
    otherwise empty: the template of each test's own database."""
    with ExitStack() as cluster:
        try:
            database_url = cluster.enter_context(throwaway_postgres())
        except PostgresUnavailable as error:
            required_or_skip("EMOTIONSITE_REQUIRE_POSTGRES", str(error))
        manage("migrate", "--noinput", environment=os.environ | {"DATABASE_URL": database_url}, timeout=300)
        yield database_url


@pytest.fixture
def postgres_database(postgres_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test, migrated and empty; its DATABASE_URL."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    # Copying a template needs it unused: connect to the maintenance database.
    with psycopg.connect(_other_database(postgres_template, "postgres"), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE emotionsite')
    yield _other_database(postgres_template, name)


def _other_database(database_url: str, name: str) -> str:
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
