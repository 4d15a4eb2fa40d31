"""A site ready to retrain: its own models folder with the tiny model active, and reviewed faces of real images."""

import io
import shutil
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User
from classifier import services
from classifier.models import Face, ModelVersion
from emotionsite.settings import RetrainSettings
from ml.labels import EXPRESSIONS
from ml.testing import synthetic_crops

# The split hashes capture ids (a video frame's video's id; classifier.training_data), so a test whose outcome
# depends on which faces are held out needs the same ids on every database: from 1 in each test. SQLite takes
# the ids of a rolled-back or flushed test again; PostgreSQL's sequences go on unless reset.
SAME_CAPTURE_IDS = pytest.mark.django_db(transaction=True, reset_sequences=True)

# Small enough for a test to retrain the tiny model in seconds. The tiny net has two convolution stages: the
# site's frozen_stages would leave it only its head to learn with.
TEST_RETRAIN = RetrainSettings(
    min_faces=40, epochs=2, batch_size=16, learning_rate=0.01, frozen_stages=0, reference_images=64, stale_seconds=300
)


def retrain_site(settings, tmp_path: Path, tiny_models_dir: Path) -> ModelVersion:
    """Point the settings at a models folder of this test's own holding tiny-1, registered and active."""
    models_dir = tmp_path / "models"
    shutil.copytree(tiny_models_dir / "tiny-1", models_dir / "tiny-1")
    settings.EMOTIONSITE_MODEL_DIR = models_dir
    settings.EMOTIONSITE_RETRAIN = TEST_RETRAIN
    settings.EMOTIONSITE_REFERENCE_DATA = None
    services.model_versions_register()
    return ModelVersion.objects.get(state=ModelVersion.State.ACTIVE)


def reviewed_faces(owner: User, count: int, *, seed: int = 0, label_shift: int = 0) -> list[Face]:
    """`count` captures of one synthetic 48x48 crop each, uploaded and reviewed with their true expression.

    With `label_shift`, reviewers call each kind of crop the expression that many places further on in
    EXPRESSIONS: a population the model reads wrongly, so a retrained candidate is clearly ahead.
    """
    crops = synthetic_crops(count, seed=seed)
    faces = []
    for pixels, label in zip(crops.images, crops.labels, strict=True):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        capture = services.capture_create(owner=owner, image=SimpleUploadedFile("crop.png", buffer.getvalue()))
        face = capture.faces.get()
        true_label = EXPRESSIONS[(label + label_shift) % len(EXPRESSIONS)]
        faces.append(services.face_review(face=face, reviewer=owner, true_label=true_label))
    return faces
