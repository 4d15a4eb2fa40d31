"""Uploaded bytes to a clean picture: checked, first frame, EXIF orientation applied, 8-bit, no metadata.

Every refusal is an ImageRefused whose message a person can act on; nothing here writes anywhere.
"""

import io
import math
import warnings
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ml.faces import DETECTOR_MAX_SIDE
from ml.images import STRIP_PIXELS, to_eight_bit

# Pillow's names of the formats we take. MPO is how Pillow names many phones' JPEGs (a JPEG with a depth map).
ACCEPTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF"}
ACCEPTED_FORMATS_TEXT = "JPEG, PNG, WebP, BMP, GIF or TIFF"


def upload_limits_text(*, max_bytes: int, max_pixels: int, max_decoded_bytes: int) -> str:
    """What an upload may be, in the words every form and the API's schema use. Only a JPEG can be decoded
    at a smaller size (`_fit_the_decoding`): a colour image in another format must fit max_decoded_bytes."""
    text = f"{ACCEPTED_FORMATS_TEXT}; up to {max_bytes // 2**20} MB and {max_pixels // 1_000_000} megapixels"
    colour_pixels = max_decoded_bytes // _decoded_bytes("RGB", 1, 1)
    if colour_pixels < max_pixels:
        text += f" ({colour_pixels // 1_000_000} for a colour image other than a JPEG)"
    return text


# A JPEG is decoded at the smallest of 1/2, 1/4 and 1/8 of its size (Pillow's draft: libjpeg scales while
# decoding, in a fraction of the time) that keeps this much of its long side, and stored so. Faces are
# searched at ml.faces.DETECTOR_MAX_SIDE (768 px), where the smallest found is about 14 px: 2.5 times that
# side keeps it 35 px across, enough for its crop. bench/bench_faces.py measures both sides of it.
JPEG_MIN_LONG_SIDE = round(2.5 * DETECTOR_MAX_SIDE)
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


def open_upload(
    file: IO[bytes], *, size: int, max_bytes: int, max_pixels: int, max_decoded_bytes: int, max_picture_pixels: int
) -> Image.Image:
    """The upload's first frame, upright, as an 8-bit "RGB" or "L" image of at most max_picture_pixels; or
    ImageRefused.

    A JPEG is decoded at the size face finding needs (JPEG_MIN_LONG_SIDE), and decoding holds at most
    max_decoded_bytes of pixels: a JPEG too large for it is decoded smaller still, at down to 1/8 of its size
    (Pillow's draft, which asks libjpeg to scale while decoding); any other format, which decodes whole, is
    refused. A larger picture is then downscaled, so what follows (faces, encoding) works on at most
    max_picture_pixels."""
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
        except _DAMAGED_FILE_ERRORS as error:
            raise _unreadable(error, "The image is damaged and cannot be read.") from None

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
        _fit_the_decoding(image, max_decoded_bytes=max_decoded_bytes)
        image.load()
    except _DAMAGED_FILE_ERRORS as error:
        raise _unreadable(error, "The image is damaged or incomplete (was the upload cut short?).") from None
    try:
        # The EXIF orientation, as a phone's gallery shows the photo; in place: no second copy of the pixels.
        ImageOps.exif_transpose(image, in_place=True)
    except _DAMAGED_FILE_ERRORS:
        pass  # broken EXIF: the pixels are still good; keep them as stored
    picture = to_eight_bit(image)
    del image  # the decoded pixels go as soon as the 8-bit picture is made from them
    return _at_most(picture, max_pixels=max_picture_pixels)


def _unreadable(error: Exception, damaged: str) -> ImageRefused:
    """The refusal of an image Pillow could not read: `damaged`, unless Pillow stopped at its guards against
    PNG metadata that unpacks to a memory bomb (a text chunk or colour profile over MAX_TEXT_CHUNK, or text
    over MAX_TEXT_MEMORY in all; its messages name them), where the pixels may be sound."""
    if isinstance(error, ValueError) and "MAX_TEXT_" in str(error):
        return ImageRefused(
            "The image's metadata (PNG text or colour profile) unpacks to more than we read: "
            "save it again without its metadata."
        )
    return ImageRefused(damaged)


def _decoded_bytes(mode: str, width: int, height: int) -> int:
    """What Pillow holds for these pixels: a byte for "1", "L" and "P", two for 16-bit grey, four for the
    rest ("RGB" too, stored as four bytes a pixel)."""
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return per_pixel * width * height


def _fit_the_decoding(image: Image.Image, *, max_decoded_bytes: int) -> None:
    """Set up the decoding: a JPEG at the size face finding needs (JPEG_MIN_LONG_SIDE), and smaller if it
    must be to hold at most max_decoded_bytes; any image that cannot is refused (ImageRefused, too large)."""
    width, height = image.size
    if image.format in ("JPEG", "MPO"):
        scale = 1
        while scale < 8 and _jpeg_side(max(width, height), 2 * scale) >= JPEG_MIN_LONG_SIDE:
            scale *= 2
        while scale < 8 and (
            _decoded_bytes(image.mode, _jpeg_side(width, scale), _jpeg_side(height, scale)) > max_decoded_bytes
        ):
            scale *= 2
        if scale > 1:
            # Pillow takes the scale that fits the size asked for into the image: min(side // asked), which
            # the rounded-up sides would make smaller than `scale` when a side does not divide by it.
            image.draft(image.mode, (max(1, width // scale), max(1, height // scale)))
    if _decoded_bytes(image.mode, *image.size) <= max_decoded_bytes:
        return
    megabytes = _decoded_bytes(image.mode, width, height) / 2**20
    limit = max_decoded_bytes / 2**20
    largest = max_decoded_bytes // _decoded_bytes(image.mode, 1, 1) / 1_000_000
    raise ImageRefused(
        f"This {image.format} image would take {megabytes:.0f} MB of memory to read ({width}x{height} pixels); "
        f"the limit is {limit:.0f} MB, about {largest:.0f} megapixels for it. Upload it smaller, or as a JPEG.",
        too_large=True,
    )


def _jpeg_side(side: int, scale: int) -> int:
    """A side as libjpeg decodes it at 1/scale: rounded up."""
    return -(-side // scale)


def _at_most(picture: Image.Image, *, max_pixels: int) -> Image.Image:
    """The picture downscaled to at most max_pixels, band by band: one resize of the whole would first make
    an image of the new width and the old height (76 MB for a 25-megapixel photo) on top of both."""
    width, height = picture.size
    if width * height <= max_pixels:
        return picture
    scale = math.sqrt(max_pixels / (width * height))
    new_width, new_height = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    smaller = Image.new(picture.mode, (new_width, new_height))
    rows = max(1, STRIP_PIXELS // new_width)
    for top in range(0, new_height, rows):
        bottom = min(top + rows, new_height)
        # The band's own part of the source; the filter still reads the pixels around it, so no seam shows.
        box = (0, top * height / new_height, width, bottom * height / new_height)
        smaller.paste(picture.resize((new_width, bottom - top), Image.Resampling.LANCZOS, box=box), (0, top))
    return smaller


def encode_jpeg(image: Image.Image, *, quality: int = STORED_JPEG_QUALITY) -> bytes:
    """The picture as a JPEG with no metadata: no EXIF, no GPS, no comment.

    Pillow's default Huffman tables, not ones made for the picture (`optimize`): those save 3.7% of the
    bytes of a 640x480 photo for twice the time (2.5 ms against 1.2 ms, bench/bench_site.py's photo)."""
    buffer = io.BytesIO()
    # Pillow writes the source's JPEG comment (image.info) unless told another: an empty one writes none.
    image.save(buffer, format="JPEG", quality=quality, comment=b"")
    return buffer.getvalue()


def thumbnail(image: Image.Image, *, side: int = THUMBNAIL_SIDE) -> Image.Image:
    """At most side x side, its shape kept; resized from the picture directly, never from a full-size copy.

    Shrunk first by the largest whole factor with a box filter, then by LANCZOS (Pillow's reducing_gap=1):
    0.3 ms for a 640x480 photo against 4.3 ms for LANCZOS all the way, 0.76 grey levels apart on average."""
    scale = min(1.0, side / image.width, side / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.0)


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
