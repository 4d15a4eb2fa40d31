"""Fixtures shared by the site's tests: users, a real tiny model version, private media in a temporary folder."""

from pathlib import Path

import pytest
from django.test import Client

from accounts.models import User
from classifier import services
from classifier.models import ModelVersion

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
    """The test database in a file, not in memory, so a test may share it with a real worker process."""
    from django.conf import settings

    settings.DATABASES["default"]["TEST"]["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")
