"""Uploaded bytes to a clean picture: checked, first frame, EXIF orientation applied, 8-bit, no metadata.

Every refusal is an ImageRefused whose message a person can act on; nothing here writes anywhere.
"""

import io
import math
import warnings
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ml.images import to_eight_bit

# Pillow's names of the formats we take. MPO is how Pillow names many phones' JPEGs (a JPEG with a depth map).
ACCEPTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF"}
ACCEPTED_FORMATS_TEXT = "JPEG, PNG, WebP, BMP, GIF or TIFF"


def upload_limits_text(*, max_bytes: int, max_pixels: int) -> str:
    """What an upload may be, in the words every form and the API's schema use."""
    return f"{ACCEPTED_FORMATS_TEXT}; up to {max_bytes // 2**20} MB and {max_pixels // 1_000_000} megapixels"


# Multipart framing on top of the image: a request body larger than the limit plus this is refused unread.
MULTIPART_ALLOWANCE = 64 * 1024
THUMBNAIL_SIDE = 320
STORED_JPEG_QUALITY = 92
THUMBNAIL_JPEG_QUALITY = 80

# Pillow's errors when a file claims a format and then does not keep its word.
_DAMAGED_FILE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError, ZeroDivisionError)


class ImageRefused(Exception):
    """The upload cannot be used; `message` says why, `too_large` marks a size limit (HTTP 413)."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.message = message
        self.too_large = too_large


def refuse_a_declared_oversized_upload(content_length: str | None, *, max_bytes: int) -> None:
    """Refuse (ImageRefused, too large) a request whose Content-Length announces an upload over the limit,
    before its body is read, so a huge upload is not first spooled to disk. Every upload door calls it."""
    if declared_body_too_large(content_length, max_bytes=max_bytes):
        raise ImageRefused(f"The upload is over the limit of {max_bytes // 2**20} MB.", too_large=True)


def declared_body_too_large(content_length: str | None, *, max_bytes: int) -> bool:
    """Whether a request's Content-Length header announces more than an upload of max_bytes can take.

    A header that is not a number announces nothing: Django then reads the body as empty.
    """
    try:
        return int(content_length or 0) > max_bytes + MULTIPART_ALLOWANCE
    except ValueError:
        return False


def open_upload(file: IO[bytes], *, size: int, max_bytes: int, max_pixels: int) -> Image.Image:
    """The upload's first frame, upright, as an 8-bit "RGB" or "L" image; or ImageRefused."""
    if size == 0:
        raise ImageRefused("The file is empty.")
    if size > max_bytes:
        # Rounded up, so a file just over the limit is never said to be the limit's size.
        megabytes = math.ceil(size / 2**20 * 10) / 10
        raise ImageRefused(f"The file is {megabytes:.1f} MB; the limit is {max_bytes // 2**20} MB.", too_large=True)
    file.seek(0)
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice it; we refuse well below either.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(file)
        except Image.DecompressionBombError:
            raise ImageRefused(
                f"The image has far more pixels than the limit of {max_pixels // 1_000_000} megapixels.",
                too_large=True,
            ) from None
        except UnidentifiedImageError:
            raise ImageRefused(f"This file is not an image we can read: upload a {ACCEPTED_FORMATS_TEXT}.") from None
        except _DAMAGED_FILE_ERRORS:
            raise ImageRefused("The image is damaged and cannot be read.") from None

    if image.format not in ACCEPTED_FORMATS:
        raise ImageRefused(f"{image.format} images are not accepted: upload a {ACCEPTED_FORMATS_TEXT}.")
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRefused("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageRefused(
            f"The image is {width}x{height} pixels ({width * height / 1_000_000:.0f} megapixels); "
            f"the limit is {max_pixels // 1_000_000} megapixels.",
            too_large=True,
        )
    try:
        image.seek(0)  # an animated GIF, WebP or PNG, or a multi-page TIFF: its first frame
        image.load()
    except _DAMAGED_FILE_ERRORS:
        raise ImageRefused("The image is damaged or incomplete (was the upload cut short?).") from None
    return to_eight_bit(_upright(image))


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, as a phone's gallery shows the photo."""
    try:
        return ImageOps.exif_transpose(image)
    except _DAMAGED_FILE_ERRORS:
        # Broken EXIF: the pixels are still good; show them as stored.
        return image


def encode_jpeg(image: Image.Image, *, quality: int = STORED_JPEG_QUALITY) -> bytes:
    """The picture as a JPEG with no metadata: no EXIF, no GPS, no comment."""
    buffer = io.BytesIO()
    # Pillow writes the source's JPEG comment (image.info) unless told another: an empty one writes none.
    image.save(buffer, format="JPEG", quality=quality, optimize=True, comment=b"")
    return buffer.getvalue()


def thumbnail(image: Image.Image, *, side: int = THUMBNAIL_SIDE) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.LANCZOS)
    return copy


FACE_PICTURE_SIDE = 320
FACE_PICTURE_MARGIN = 0.4  # of the box's side, on every side: the hair, the chin, a little of the scene


def face_picture(image: Image.Image, box: tuple[int, int, int, int], *, side: int = FACE_PICTURE_SIDE) -> Image.Image:
    """The face cut from its photo with a margin, square, at most `side` pixels a side: what a reviewer sees."""
    x, y, width, height = box
    half = max(width, height) * (0.5 + FACE_PICTURE_MARGIN)
    centre_x, centre_y = x + width / 2, y + height / 2
    square = (round(centre_x - half), round(centre_y - half), round(centre_x + half), round(centre_y + half))
    picture = image.crop(square)  # what falls outside the photo is black
    if picture.width > side:
        picture = picture.resize((side, side), Image.Resampling.LANCZOS)
    return picture


def enlarged_crop(crop: np.ndarray, *, side: int = FACE_PICTURE_SIDE) -> Image.Image:
    """The model's grey crop, enlarged for a person to judge; it holds nothing of the photo beyond the face."""
    return Image.fromarray(crop).resize((side, side), Image.Resampling.BICUBIC)
