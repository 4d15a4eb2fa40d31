"""Photograph a capture's result page for the README: python scripts/screenshot.py [--out static/img/screenshot.png]

Runs the site in this process on a throwaway database and media folder, classifies a photo with the
model versions in --model-dir (default: EMOTIONSITE_MODEL_DIR, the shipped model), and saves what
Debian's Chromium shows at desktop width. --tiny-model trains a tiny stand-in model instead (its
predictions are meaningless; for trying the script before a real model exists).

The default photo is scikit-image's astronaut (Eileen Collins, NASA, public domain).
"""

import argparse
import io
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parent.parent


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def photo_bytes(path: Path | None) -> bytes:
    if path is not None:
        return path.read_bytes()
    from PIL import Image
    from skimage.data import astronaut

    jpeg = io.BytesIO()
    Image.fromarray(astronaut()).save(jpeg, "JPEG", quality=92)
    return jpeg.getvalue()


def smaller_png(png: bytes, max_bytes: int) -> bytes:
    """The screenshot as is if small enough, else with its colours reduced to a 256-colour palette."""
    if len(png) <= max_bytes:
        return png
    from PIL import Image

    reduced = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(
        reduced, "PNG", optimize=True
    )
    return reduced.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "static" / "img" / "screenshot.png")
    parser.add_argument("--photo", type=Path, help="the photo to classify (default: scikit-image's astronaut)")
    parser.add_argument("--model-dir", type=Path, help="a folder of model versions (default: EMOTIONSITE_MODEL_DIR)")
    parser.add_argument("--tiny-model", action="store_true", help="train a tiny stand-in model instead")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=760)
    parser.add_argument("--max-bytes", type=int, default=200_000)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS

    scratch = Path(tempfile.mkdtemp(prefix="emotionsite-screenshot-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="emotionsite.settings",
        DEBUG="true",
        EMOTIONSITE_DATA_DIR=str(scratch),
        EMOTIONSITE_MEDIA_DIR=str(scratch / "media"),
    )
    if args.model_dir:
        os.environ["EMOTIONSITE_MODEL_DIR"] = str(args.model_dir.resolve())
    if args.tiny_model:
        from ml.testing import train_tiny_model

        train_tiny_model(scratch / "models", version="tiny-1")
        os.environ["EMOTIONSITE_MODEL_DIR"] = str(scratch / "models")

    import django

    django.setup()
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.test import Client

    from accounts.models import User
    from classifier import services

    call_command("migrate", verbosity=0)
    owner = User.objects.create_user("ada")
    image = SimpleUploadedFile("photo.jpg", photo_bytes(args.photo), content_type="image/jpeg")
    capture = services.capture_create(owner=owner, image=image, source="upload")
    client = Client()
    client.force_login(owner)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value

    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_port}"

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": args.width, "height": args.height})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": site}])
        page = context.new_page()
        page.goto(f"{site}/captures/{capture.pk}/", wait_until="networkidle")
        png = page.screenshot()
        browser.close()
    server.shutdown()

    png = smaller_png(png, args.max_bytes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png)
    faces = ", ".join(f"{face.predicted_label} {face.confidence:.0%}" for face in capture.faces.all())
    print(f"{args.out}: {len(png) // 1024} KB; model version {capture.model_version}; faces: {faces or 'none'}")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
