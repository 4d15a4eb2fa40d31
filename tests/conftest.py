"""Fixtures shared by the site's tests: users, a real tiny model version, private media in a temporary folder."""

import ctypes
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client

from accounts.models import User
from classifier import services
from classifier.models import ModelVersion

pytest_plugins = ["tests.site_processes"]

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding one real tiny model version, trained once per test session (~2 s)."""
    from ml.testing import train_tiny_model

    models_dir = tmp_path_factory.mktemp("models")
    train_tiny_model(models_dir, version="tiny-1")
    return models_dir


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # PBKDF2's million rounds cost ~0.4 s a user; the tests check behaviour, not the hash's strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def media_dir(settings, tmp_path: Path) -> Path:
    """The private media folder, empty and private to this test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def model_version(db, settings, tiny_models_dir: Path) -> ModelVersion:
    """The tiny model, registered and active, as a fresh site's first request would make it."""
    settings.EMOTIONSITE_MODEL_DIR = tiny_models_dir
    services.model_versions_register()
    return ModelVersion.objects.get(state=ModelVersion.State.ACTIVE)


def site_environment(settings, media_dir: Path) -> dict[str, str]:
    """The environment of a process of the site's own (a worker, a measure) on this test's database, models
    and media."""
    # Imported here: the module is a plugin of this conftest (pytest_plugins), which pytest imports after it.
    from tests.site_processes import database_url_of_the_tests

    return os.environ | {
        "DATABASE_URL": database_url_of_the_tests(),
        "EMOTIONSITE_MODEL_DIR": str(settings.EMOTIONSITE_MODEL_DIR),
        "EMOTIONSITE_MEDIA_DIR": str(media_dir),
    }


@contextmanager
def db_worker_running(settings, media_dir: Path) -> Iterator[subprocess.Popen]:
    """A real `manage.py db_worker` process on this test's database, models and media; killed, if it is still
    running, when the block ends."""
    environment = site_environment(settings, media_dir)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.2"],
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield worker
    finally:
        worker.kill()
        worker.wait()
        worker.stderr.close()


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """`with run_on_commit():` runs what the code deferred to the commit (deleting files), as a real request would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def make_user(username: str = "ada", *, staff: bool = False) -> User:
    if staff:
        return User.objects.create_superuser(username=username, password=PASSWORD)
    return User.objects.create_user(username=username, password=PASSWORD)


@pytest.fixture
def user(db) -> User:
    return make_user("ada")


@pytest.fixture
def other_user(db) -> User:
    return make_user("grace")


@pytest.fixture
def staff_user(db) -> User:
    return make_user("admin", staff=True)


@pytest.fixture
def user_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def pytest_configure(config: pytest.Config) -> None:
    # WhiteNoise looks for collected static files, which tests never need.
    config.addinivalue_line("filterwarnings", "ignore:No directory at:UserWarning")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory) -> None:
    """On SQLite, the test database in a file, not in memory, so a test may share it with a real worker process.
    (PostgreSQL's test database is one that other processes reach already.)"""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        settings.DATABASES["default"]["TEST"]["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")


# Linux capabilities that let root write, search and unlink where a folder's mode says no.
_CAPABILITIES_OVER_FILE_MODES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


@contextmanager
def unwritable(folder: Path) -> Iterator[Path]:
    """`folder` read-only to this thread, as a deployment's mistake leaves it (a volume mounted for another
    user, a read-only mount): its mode is r-x; run as root (a container), this thread also lays down the
    capabilities that let root ignore the mode, taking them up again after."""
    folder.mkdir(parents=True, exist_ok=True)
    mode = folder.stat().st_mode
    folder.chmod(0o555)
    dropped = os.geteuid() == 0 and _set_effective_capabilities(drop=_CAPABILITIES_OVER_FILE_MODES)
    try:
        yield folder
    finally:
        if dropped:
            _set_effective_capabilities(drop=())
        folder.chmod(mode)


def _set_effective_capabilities(*, drop: tuple[int, ...]) -> bool:
    """This thread's effective capabilities: all it is permitted, less `drop` (capset(2), version 3)."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    for part in data:
        part.effective = part.permitted
    for capability in drop:
        data[capability // 32].effective &= ~(1 << (capability % 32))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    return True
