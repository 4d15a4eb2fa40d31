"""Every classifier test gets its own empty private media folder."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_media(media_dir: Path) -> Path:
    return media_dir
