"""What the benchmarks share: the photo they send (made from a test fixture, no data set needed) and a timer."""

import io
import time
from collections.abc import Callable
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
