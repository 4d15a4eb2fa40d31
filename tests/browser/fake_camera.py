"""A video file for Chromium's fake camera (--use-file-for-fake-video-capture) that films a real face."""

from pathlib import Path

import numpy as np
from PIL import Image

# skimage.data.astronaut() (Eileen Collins, NASA, public domain) at 320 px.
ASTRONAUT = Path(__file__).resolve().parent.parent / "fixtures" / "astronaut.jpg"


def rgb_to_i420(rgb: np.ndarray) -> list[np.ndarray]:
    """The Y, U and V planes (BT.601, studio range, chroma averaged over 2x2) of an RGB frame."""
    red, green, blue = (rgb[..., channel].astype(np.float32) / 255 for channel in range(3))
    luma = 16 + 65.481 * red + 128.553 * green + 24.966 * blue
    blue_difference = 128 - 37.797 * red - 74.203 * green + 112.0 * blue
    red_difference = 128 + 112.0 * red - 93.786 * green - 18.214 * blue

    def halved(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(plane.shape[0] // 2, 2, plane.shape[1] // 2, 2).mean(axis=(1, 3))

    return [
        np.clip(np.rint(plane), 0, 255).astype(np.uint8)
        for plane in (luma, halved(blue_difference), halved(red_difference))
    ]


def write_y4m(path: Path, frame: Image.Image, *, frames: int = 2) -> Path:
    """A YUV4MPEG2 (4:2:0) video repeating one frame: what Chromium's fake camera plays, in a loop."""
    width, height = frame.size
    planes = rgb_to_i420(np.asarray(frame.convert("RGB")))
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for _ in range(frames):
            video.write(b"FRAME\n")
            for plane in planes:
                video.write(plane.tobytes())
    return path


def webcam_frame(*, portrait_at: tuple[int, int] = (80, 0)) -> Image.Image:
    """A 640x480 camera frame showing the astronaut's portrait (her face about 90 px wide) on a grey wall,
    the portrait's top left corner at `portrait_at`."""
    frame = Image.new("RGB", (640, 480), (90, 90, 90))
    with Image.open(ASTRONAUT) as photo:
        frame.paste(photo.convert("RGB").resize((480, 480), Image.Resampling.LANCZOS), portrait_at)
    return frame
