"""The process-wide loaded Predictor, keyed by the model version it serves.

Each worker process keeps one Predictor. A request that needs a prediction asks for the active
model version (one indexed query) and passes it here; when another version has become active
in the database since the last request, the new one is loaded and the old one dropped, so every
worker follows an activation on its next request without a restart.
"""

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DatabaseError

from classifier import selectors
from classifier.models import ModelVersion

if TYPE_CHECKING:
    from ml.predictor import Predictor

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: "tuple[str, Predictor] | None" = None


class ModelUnavailable(Exception):
    """No model version can predict right now: none is active, or its folder cannot be loaded."""


def model_folder(model_version: ModelVersion) -> Path:
    """The version's folder; a relative path is read inside EMOTIONSITE_MODEL_DIR."""
    return Path(settings.EMOTIONSITE_MODEL_DIR) / model_version.path


def predictor_for(model_version: ModelVersion) -> "Predictor":
    """The loaded Predictor of this model version, loading it (once per process) if another is loaded.

    Paddle is imported on the first call, so management commands that never predict do not pay for it.
    """
    global _loaded
    loaded = _loaded
    if loaded is not None and loaded[0] == model_version.version:
        return loaded[1]
    with _lock:
        if _loaded is None or _loaded[0] != model_version.version:
            from ml.predictor import ModelLoadError, Predictor

            try:
                _loaded = (model_version.version, Predictor.load(model_folder(model_version)))
            except ModelLoadError as error:
                # The log is how an administrator hears of it; the person uploading sees a 503.
                logger.error("Model version %s cannot be loaded: %s", model_version.version, error)
                raise ModelUnavailable(str(error)) from error
        return _loaded[1]


def warm_up() -> None:
    """Load the active version's Predictor now, as a web process starts, so that no request waits for Paddle's
    import and the model's load: seconds on a busy machine, where a health probe timed out on a process's
    first request. Read-only: a database not yet migrated, no active version, or one that cannot load is left
    to the first request, which handles it as it always has."""
    try:
        model_version = selectors.active_model_version()
    except DatabaseError:
        return
    if model_version is not None:
        try:
            predictor_for(model_version)
        except ModelUnavailable:
            pass  # predictor_for logged it; the first prediction records it and falls back
