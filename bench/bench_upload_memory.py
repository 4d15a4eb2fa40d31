"""Memory a gunicorn worker takes to read large uploads, and what it keeps afterwards.

    python bench/bench_upload_memory.py [--repeat 3]

Starts gunicorn (gunicorn.conf.py, 1 worker, DEBUG off) on a free port with a temporary SQLite database
and media folder and the shipped model, then sends POST /api/v1/captures/ one at a time: a 640x480 JPEG
(a phone's small photo) and images near the 40-megapixel limit that are small in bytes (decompression
bombs: one colour compresses a thousandfold), each --repeat times. For each it prints the worker's
resident memory before, its peak while answering (VmHWM, reset before each request through
/proc/PID/clear_refs) and its resident memory a second after. Figures are printed, never asserted.

Measured 1 Dec 2026 on the 2-core development machine (shared with other work), --repeat 2, MB over the
worker's resident memory before each request. Before issue 14's fix, all answered 201:

    7200x5400 RGB PNG (111 KB)        peak +382, +366   kept +90, +0
    7200x5400 RGBA PNG                peak +737, +737
    7200x5400 16-bit grey PNG         peak +779, +747   kept +32, +0

After it (decoding within EMOTIONSITE_MAX_DECODED_BYTES, no full-size copies, large blocks given back):

    640x480 JPEG (one face)           201  peak   +3    kept  +1
    7200x5400 RGB or RGBA PNG, WebP   413  peak   +0    (refused from the header, before decoding)
    5000x5000 RGB PNG (25 MP)         201  peak +218, +159   kept +112, +6
    5000x5000 RGBA PNG                201  peak +191, +191   kept   +0, +0
    7200x5400 16-bit grey PNG         201  peak +127, +115   kept  +82, +1
    7296x5472 JPEG (39.9 MP)          201  peak  +67,  +67   kept   +0, +1   (decoded at half size)

What stays after the first of a shape is the face detector's interpreter for that input shape (ml.faces
keeps 4 shapes; a 768x768 one holds ~115 MB, 768x576 ~94 MB), not the upload.
"""

import argparse
import io
import os
import sys
import time
from http.client import HTTPConnection
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_site import Server, multipart  # noqa: E402  (this folder is on sys.path when run as a script)
from shared import one_face_photo_jpeg, scratch_site  # noqa: E402

SHIPPED_MODEL = ROOT / "models" / "fer2013-vgg48-v5"


def encoded(mode: str, size: tuple[int, int], format: str, colour=0) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format)
    return buffer.getvalue()


UPLOADS = {
    "640x480 JPEG (one face)": lambda: one_face_photo_jpeg(),
    "7200x5400 RGB PNG (38.9 MP)": lambda: encoded("RGB", (7200, 5400), "PNG"),
    "7200x5400 RGBA PNG": lambda: encoded("RGBA", (7200, 5400), "PNG"),
    "5000x5000 RGB PNG (25 MP)": lambda: encoded("RGB", (5000, 5000), "PNG"),
    "5000x5000 RGBA PNG": lambda: encoded("RGBA", (5000, 5000), "PNG"),
    "7200x5400 16-bit grey PNG": lambda: encoded("I;16", (7200, 5400), "PNG"),
    "7200x5400 WebP": lambda: encoded("RGB", (7200, 5400), "WEBP"),
    "7296x5472 JPEG (39.9 MP)": lambda: encoded("RGB", (7296, 5472), "JPEG", (120, 120, 120)),
}


def megabytes(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def worker_pid(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise SystemExit("gunicorn started no worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()

    with scratch_site(SHIPPED_MODEL, prefix="bench-memory-") as scratch:
        from accounts.models import User
        from accounts.services import api_token_create
        from classifier import services

        services.model_versions_register()

        token = api_token_create(user=User.objects.create_user("bench", password="bench password 12"))
        server = Server(dict(os.environ), scratch / "gunicorn.log", workers=1)
        try:
            try:
                server.wait_until_ready()
            except SystemExit:
                print(server.log_tail(), file=sys.stderr)
                raise
            worker = worker_pid(server.process.pid)

            def post_capture(name: str, content: bytes) -> int:
                # A connection each: making the next image can outlast gunicorn's keep-alive.
                connection = HTTPConnection("127.0.0.1", server.port, timeout=120)
                body, content_type = multipart("image", name, content)
                headers = {"Authorization": f"Token {token}", "Content-Type": content_type}
                connection.request("POST", "/api/v1/captures/", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                connection.close()
                return response.status

            post_capture("warm-up.jpg", one_face_photo_jpeg())
            print(f"worker {worker} after one small capture: {megabytes(worker, 'VmRSS'):.0f} MB resident")
            for name, make in UPLOADS.items():
                content = make()
                for _ in range(arguments.repeat):
                    before = megabytes(worker, "VmRSS")
                    Path(f"/proc/{worker}/clear_refs").write_text("5")
                    started = time.perf_counter()
                    status = post_capture("upload", content)
                    seconds = time.perf_counter() - started
                    peak = megabytes(worker, "VmHWM")
                    time.sleep(1)
                    after = megabytes(worker, "VmRSS")
                    print(
                        f"{name:30} {len(content) / 1024:7.0f} KB -> {status} in {seconds:4.1f} s; "
                        f"worker MB: before {before:5.0f}, peak {peak:5.0f} (+{peak - before:4.0f}), "
                        f"after {after:5.0f} (+{after - before:4.0f})"
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
