"""Decoding holds a bounded memory per upload: the probe's 114 KB 39-megapixel PNG cost ~500 MB, and images
near the pixel limit cost several times their decoded size. Measured as this process's peak resident memory
(Pillow's pixels are not Python objects, so tracemalloc cannot see them), each in a fresh process."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import site_environment

PROJECT = Path(__file__).resolve().parents[2]
MB = 2**20

# Reads the upload as the site does (services.image_predict: checked, upright, 8-bit, faces found and read)
# and encodes the image and thumbnail it would store; says how far above its resident memory before (a
# first small photo read, so the models are loaded) its peak went, and where its resident memory ended.
MEASURE = """
import gc, io, json, sys
import django
django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from classifier import images, services
from ml.runtime import give_large_allocations_back

give_large_allocations_back()  # as gunicorn.conf.py has each web worker do

def megabytes(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

def encoded(mode, size, format):
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format)
    return buffer.getvalue()

mode, width, height, format = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
data = encoded(mode, (width, height), format)
# A first photo of the same shape, at 1280 pixels: the face detector readies itself for that shape once.
first = (width * 1280 // max(width, height), height * 1280 // max(width, height))
services.image_predict(image=SimpleUploadedFile("first.jpg", encoded("RGB", first, "JPEG")))
gc.collect()
before = megabytes("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
try:
    picture = services.image_predict(image=SimpleUploadedFile("upload", data)).picture
    images.encode_jpeg(picture), images.encode_jpeg(images.thumbnail(picture))
    outcome = list(picture.size)
    del picture
except services.ImageRefused as refusal:
    outcome = refusal.message
peak = megabytes("VmHWM") - before
gc.collect()
print(json.dumps({"file": len(data), "peak": peak, "kept": megabytes("VmRSS") - before, "outcome": outcome}))
"""


def measure(settings, media_dir, mode: str, size: tuple[int, int], format: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, mode, str(size[0]), str(size[1]), format],
        cwd=PROJECT,
        env=site_environment(settings, media_dir) | {"DJANGO_SETTINGS_MODULE": "emotionsite.settings"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# A fresh process for each measure (the models load in each, ~5 s); the measuring process reads the
# registered model from the database, so it is committed.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_probes_png_bomb_is_refused_before_it_is_decoded(settings, model_version, media_dir):
    measured = measure(settings, media_dir, "RGB", (7200, 5400), "PNG")  # 38.9 megapixels of one colour

    assert measured["file"] < 120 * 1024
    assert "would take 148 MB of memory to read" in measured["outcome"]
    assert measured["peak"] < 20


@pytest.mark.parametrize(
    "mode, size, format",
    [
        ("RGB", (5000, 5000), "PNG"),  # the largest colour PNG within the decoding limit
        ("RGBA", (5000, 5000), "PNG"),  # transparency: composed onto white
        ("I;16", (7200, 5400), "PNG"),  # 16-bit grey, scaled down to 8 bits
        ("L", (7200, 5400), "PNG"),  # 8-bit grey at the pixel limit, kept smaller
        ("RGB", (7296, 5472), "JPEG"),  # 39.9 megapixels: read at half size while decoding
    ],
)
def test_an_upload_near_the_limits_costs_at_most_its_decoded_size_and_a_picture(
    settings, model_version, media_dir, mode, size, format
):
    measured = measure(settings, media_dir, mode, size, format)

    assert isinstance(measured["outcome"], list), measured["outcome"]
    width, height = measured["outcome"]
    assert width * height <= 16_000_000
    # At most the decoded pixels and an 8-bit copy of them, then the encoders' and the detector's buffers.
    assert measured["peak"] < 2 * settings.EMOTIONSITE_MAX_DECODED_BYTES / MB + 60, measured
    assert measured["kept"] < 20, measured  # and the memory is given back
