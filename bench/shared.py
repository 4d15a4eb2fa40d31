"""What the benchmarks share: the photo they send (made from a test fixture, no data set needed), a timer,
and a throwaway site to run the product's own functions in."""

import dataclasses
import functools
import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from ml.faces import _BlazeFace

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "astronaut.jpg"


def changed_settings(retrain_settings, changes: list[str]):
    """A RetrainSettings with the benchmark's --set NAME=VALUE changes made, each VALUE read as an int or a float."""
    values = {}
    for text in changes:
        name, _, value = text.partition("=")
        try:
            values[name] = int(value)
        except ValueError:
            values[name] = float(value)
    return dataclasses.replace(retrain_settings, **values)


def one_face_photo_jpeg() -> bytes:
    """The astronaut portrait, on a grey 640x480 canvas, as a JPEG like a phone upload."""
    canvas = Image.new("RGB", (640, 480), (120, 120, 120))
    portrait = Image.open(FIXTURE).convert("RGB").resize((480, 480))
    canvas.paste(portrait, ((640 - portrait.width) // 2, (480 - portrait.height) // 2))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def milliseconds(function: Callable[[], object], runs: int, warm_up: int = 5) -> list[float]:
    """Wall-clock milliseconds of each of `runs` calls, after `warm_up` calls that are not timed."""
    for _ in range(warm_up):
        function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return times


@contextmanager
def scratch_site(model: Path, *, reference_data: Path | None = None, prefix: str = "bench-") -> Iterator[Path]:
    """A site in a temporary folder, set up and Django loaded: its own SQLite database (migrated), media
    folder, and models folder holding a copy of `model`, active. The real models/ is never written."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        shutil.copytree(model, scratch / "models" / model.name)
        os.environ.pop("DATABASE_URL", None)  # the temporary SQLite database, whatever the shell says
        os.environ.pop("EMOTIONSITE_REFERENCE_DATA", None)
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE") or "emotionsite.settings",
                "DEBUG": "0",  # as in production; DEBUG would also keep every SQL query in memory
                "SECRET_KEY": secrets.token_urlsafe(40),
                "ALLOWED_HOSTS": "127.0.0.1",
                "EMOTIONSITE_DATA_DIR": str(scratch),
                "EMOTIONSITE_MEDIA_DIR": str(scratch / "media"),
                "EMOTIONSITE_MODEL_DIR": str(scratch / "models"),
            }
        )
        if reference_data is not None:
            os.environ["EMOTIONSITE_REFERENCE_DATA"] = str(reference_data)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
        )
        import django

        django.setup()
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@functools.cache
def _site_detector(half_precision: bool) -> "_BlazeFace":
    from ml.faces import _BlazeFace

    return _BlazeFace(half_precision=half_precision)


@contextmanager
def site_precision(half_precision: bool) -> Iterator[None]:
    """find_faces with its detector in 16-bit floats or in 32, old against new in one run; the site itself
    picks by the CPU (ml.faces)."""
    from ml import faces

    kept = faces._detector
    faces._detector = _site_detector(half_precision)
    try:
        yield
    finally:
        faces._detector = kept


def precisions_to_compare() -> list[tuple[bool, bool]]:
    """(detector in 16-bit floats, classifier in bfloat16) as the site runs on this CPU (ml.runtime), then
    both in 32 bits, as on any CPU: old against new in one run. Once only, on a CPU that offers neither."""
    from ml.runtime import computes_bfloat16, computes_half_precision

    return list(dict.fromkeys([(computes_half_precision(), computes_bfloat16()), (False, False)]))
