"""Any Pillow image as plain 8-bit pixels, for the site's uploads and ml's readers alike."""

import numpy as np
from PIL import Image


def to_eight_bit(image: Image.Image) -> Image.Image:
    """Any Pillow mode as "L" (grey sources) or "RGB": transparency onto white, high bit depths scaled down."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64)
        peak = float(values.max()) if values.size else 0.0
        if peak > 255:
            values = values * (255 / peak)
        elif image.mode == "F" and 0 < peak <= 1:
            values = values * 255  # floating point grey levels run from 0 to 1
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        grey = image.mode in ("LA", "La")
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image.convert("RGBA"))
        return image.convert("L" if grey else "RGB")
    if image.mode in ("L", "RGB"):
        return image  # already plain: a 12-megapixel copy costs ~15 ms
    if image.mode == "1":
        return image.convert("L")
    return image.convert("RGB")
