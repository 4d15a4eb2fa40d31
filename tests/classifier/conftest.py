"""Every classifier test gets its own empty private media folder; signed-in clients for the common roles."""

from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.classifier.corpus import api_for, signed_in


@pytest.fixture(autouse=True)
def _private_media(media_dir: Path) -> Path:
    return media_dir


@pytest.fixture
def api(user) -> APIClient:
    return api_for(user)


@pytest.fixture
def staff_client(staff_user) -> Client:
    return signed_in(staff_user)


@pytest.fixture
def staff_api(staff_user) -> APIClient:
    return api_for(staff_user)
