"""Photos the benchmarks send: made from the committed test fixture, so they need no data set."""

import io
from pathlib import Path

from PIL import Image

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "astronaut.jpg"


def one_face_photo_jpeg() -> bytes:
    """The astronaut portrait, on a grey 640x480 canvas, as a JPEG like a phone upload."""
    canvas = Image.new("RGB", (640, 480), (120, 120, 120))
    portrait = Image.open(FIXTURE).convert("RGB").resize((480, 480))
    canvas.paste(portrait, ((640 - portrait.width) // 2, (480 - portrait.height) // 2))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
