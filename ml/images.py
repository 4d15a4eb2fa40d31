"""Any Pillow image as plain 8-bit pixels, for the site's uploads and ml's readers alike."""

import numpy as np
from PIL import Image

# Pixels converted at a time: a large image is converted strip by strip, so a conversion holds its result
# and a strip (~2 MB of float64 values), never a second and third copy of the whole image.
STRIP_PIXELS = 1 << 18
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def to_eight_bit(image: Image.Image) -> Image.Image:
    """Any Pillow mode as "L" (grey sources) or "RGB": transparency onto white, high bit depths scaled down."""
    if image.mode in ("L", "RGB"):
        return image  # already plain: a 12-megapixel copy costs ~15 ms
    scale = _high_depth_scale(image)
    width, height = image.size
    if width * height <= STRIP_PIXELS:
        return _converted(image, scale)
    rows = max(1, STRIP_PIXELS // width)
    converted = None
    for top in range(0, height, rows):
        strip = _converted(image.crop((0, top, width, min(top + rows, height))), scale)
        if converted is None:
            converted = Image.new(strip.mode, image.size)
        converted.paste(strip, (0, top))
    return converted


def _high_depth_scale(image: Image.Image) -> float:
    """What 16-bit, 32-bit and floating point levels are multiplied by to fit 0-255, from the whole image."""
    if not (image.mode in ("I", "F") or image.mode.startswith("I;16")):
        return 1.0
    peak = float(image.getextrema()[1])
    if peak > 255:
        return 255 / peak
    if image.mode == "F" and 0 < peak <= 1:
        return 255.0  # floating point grey levels run from 0 to 1
    return 1.0


def _converted(image: Image.Image, scale: float) -> Image.Image:
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64) * scale
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))
    if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        grey = image.mode in ("LA", "La")
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image.convert("RGBA"))
        return image.convert("L" if grey else "RGB")
    if image.mode == "1":
        return image.convert("L")
    return image.convert("RGB")
