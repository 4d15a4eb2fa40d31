"""The upload corpus: images made by the tests themselves (good, odd and bad), and helpers to upload and count."""

import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image, PngImagePlugin
from rest_framework.test import APIClient

from classifier import services
from classifier.models import Capture, Face, ModelVersion
from ml.labels import EXPRESSIONS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ASTRONAUT = FIXTURES / "astronaut.jpg"  # scikit-image's astronaut (public domain), one face


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def astronaut() -> Image.Image:
    return Image.open(ASTRONAUT).convert("RGB")


def face_photo_bytes() -> bytes:
    return ASTRONAUT.read_bytes()


def two_faces_photo() -> Image.Image:
    """The astronaut and her mirror image side by side, large enough in the frame for the detector."""
    portrait = astronaut().crop((62, 0, 222, 160))
    photo = Image.new("RGB", (360, 200), "grey")
    photo.paste(portrait, (10, 20))
    photo.paste(portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (190, 20))
    return photo


def group_photo() -> tuple[Image.Image, list[tuple[int, int]]]:
    """Five astronaut heads in two rows, pasted out of reading order, and each face's centre in reading order."""
    portrait = astronaut().crop((62, 0, 222, 160)).resize((100, 100))
    photo = Image.new("RGB", (560, 300), "grey")
    corners = {"top middle": (230, 10), "bottom right": (400, 170), "top left": (20, 25), "bottom left": (120, 180)}
    corners["top right"] = (440, 0)
    for corner in corners.values():
        photo.paste(portrait, corner)
    in_order = ("top left", "top middle", "top right", "bottom left", "bottom right")
    # The face is the middle of the pasted head, a little above its centre.
    return photo, [(corners[name][0] + 50, corners[name][1] + 45) for name in in_order]


def no_face_photo() -> Image.Image:
    """A smooth gradient: nothing like a face, and big enough to be searched."""
    ramp = np.linspace(0, 255, 320, dtype=np.float32)
    return Image.fromarray(np.stack([np.tile(ramp, (240, 1))] * 3, axis=-1).astype(np.uint8))


def tight_crop_bytes() -> bytes:
    """A 48x48 grey face crop, as FER2013 stores them."""
    face = astronaut().crop((104, 40, 184, 120)).convert("L").resize((48, 48))
    return encode(face, "PNG")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: its length, kind, data and checksum."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size in a few bytes: a decompression bomb as Pillow first sees it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b"")


def exif_rotated_jpeg() -> bytes:
    """A 400x200 JPEG whose EXIF says "rotate 90° clockwise to view", with a GPS position to be dropped."""
    image = Image.new("RGB", (400, 200), "white")
    image.paste(Image.new("RGB", (100, 200), "red"), (0, 0))  # red on the left as stored, on top as viewed
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 31.0, 12.0), "E", (13.0, 24.0, 36.0)
    return encode(image, "JPEG", exif=exif.tobytes())


def animated_gif() -> bytes:
    first, second = Image.new("P", (160, 120), 1), Image.new("P", (160, 120), 2)
    return encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def first_frame_red(format: str) -> bytes:
    """Two frames (or pages), red then blue: the capture must be the red one."""
    red, blue = Image.new("RGB", (160, 120), "red"), Image.new("RGB", (160, 120), "blue")
    options = {} if format == "TIFF" else {"duration": 100, "loop": 0}
    return encode(red, format, save_all=True, append_images=[blue], **options)


def sixteen_bit_png() -> bytes:
    values = np.tile(np.linspace(0, 65535, 200, dtype=np.uint16), (150, 1))
    return encode(Image.fromarray(values), "PNG")


def rgba_png() -> bytes:
    image = astronaut().convert("RGBA")
    image.putalpha(128)
    return encode(image, "PNG")


def sixteen_bit_tiff() -> bytes:
    values = np.tile(np.linspace(0, 65535, 200, dtype=np.uint16), (150, 1))
    return encode(Image.fromarray(values), "TIFF")


def float_tiff() -> bytes:
    """32-bit floating point grey levels from 0 to 1, as scientific tools write them."""
    values = np.asarray(astronaut().convert("L"), dtype=np.float32) / 255
    return encode(Image.fromarray(values, mode="F"), "TIFF")


def jaffe_like_tiff() -> bytes:
    """JAFFE: 256x256 8-bit grey TIFF."""
    return encode(astronaut().convert("L").resize((256, 256)), "TIFF")


# name, content, and whether the upload is accepted
ACCEPTED_UPLOADS = {
    "photo.jpg": lambda: face_photo_bytes(),
    "photo.png": lambda: encode(astronaut(), "PNG"),
    "photo.webp": lambda: encode(astronaut(), "WEBP"),
    "photo.bmp": lambda: encode(astronaut(), "BMP"),
    "jaffe.tiff": jaffe_like_tiff,
    "cmyk.jpg": lambda: encode(astronaut().convert("CMYK"), "JPEG"),
    "sixteen-bit.png": sixteen_bit_png,
    "sixteen-bit.tiff": sixteen_bit_tiff,
    "palette.png": lambda: encode(astronaut().convert("P"), "PNG"),
    "transparent.png": rgba_png,
    "animated.gif": animated_gif,
    "animated.webp": lambda: first_frame_red("WEBP"),
    "animated.png": lambda: first_frame_red("PNG"),  # APNG
    "multi-page.tiff": lambda: first_frame_red("TIFF"),
    "png-named.jpg": lambda: encode(astronaut(), "PNG"),  # the wrong extension: the content decides
}


def truncated_jpeg() -> bytes:
    data = encode(astronaut(), "JPEG", quality=95)
    return data[: len(data) // 2]


HUGE_NOTES = "all work and no play " * 100_000  # 2 MB of text, which zlib packs into a few kB


def png_with_a_huge_text_chunk() -> bytes:
    """A real photo whose compressed text chunk, before its pixels, unpacks to 2 MB: Pillow stops at 1 MB."""
    notes = PngImagePlugin.PngInfo()
    notes.add_text("comment", HUGE_NOTES, zip=True)
    buffer = io.BytesIO()
    astronaut().save(buffer, "PNG", pnginfo=notes)
    return buffer.getvalue()


def png_with_a_huge_text_chunk_after_its_pixels() -> bytes:
    """The same notes placed after the pixels, where Pillow meets them while loading, not while opening."""
    data = encode(astronaut(), "PNG")
    # Keyword, its end, compression method 0, the compressed text.
    notes = png_chunk(b"zTXt", b"comment\0\0" + zlib.compress(HUGE_NOTES.encode()))
    end = data.rindex(b"IEND") - 4  # the IEND chunk starts with its length
    return data[:end] + notes + data[end:]


# name, content, HTTP status, and a piece of the message
REFUSED_UPLOADS = {
    "notes.jpg": (lambda: b"These are my notes, not a photo.\n" * 20, 400, "not an image"),
    "empty.png": (lambda: b"", 400, "empty"),
    "truncated.jpg": (truncated_jpeg, 400, "damaged or incomplete"),
    "huge-notes.png": (png_with_a_huge_text_chunk, 400, "metadata (PNG text or colour profile)"),
    "huge-notes-last.png": (png_with_a_huge_text_chunk_after_its_pixels, 400, "metadata (PNG text or colour profile)"),
    "bomb.png": (lambda: png_header_only(50_000, 50_000), 413, "megapixels"),
    "too-many-pixels.png": (lambda: png_header_only(8_000, 6_000), 413, "megapixels"),
    "document.pdf": (lambda: encode(astronaut(), "PDF"), 400, "not an image"),
    "icon.ico": (lambda: encode(astronaut().resize((64, 64)), "ICO"), 400, "not accepted"),
}


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def stored_files(media_dir: Path) -> list[Path]:
    return [path for path in media_dir.rglob("*") if path.is_file()] if media_dir.exists() else []


def nothing_stored(media_dir: Path) -> bool:
    return not Capture.objects.exists() and not Face.objects.exists() and not stored_files(media_dir)


def make_capture(owner, content: bytes | None = None, name: str = "photo.jpg", source: str = "upload") -> Capture:
    """A capture made the way every door makes one."""
    return services.capture_create(
        owner=owner, image=upload(name, face_photo_bytes() if content is None else content), source=source
    )


def signed_in(person) -> Client:
    """A browser-like client with this person signed in."""
    client = Client()
    client.force_login(person)
    return client


def api_for(person) -> APIClient:
    """An API client authenticated as this person (the token flow itself is tested in test_api_captures)."""
    client = APIClient()
    client.force_authenticate(person)
    return client


def face_row(
    owner,
    model_version: ModelVersion,
    *,
    predicted: str,
    when,
    true_label: str | None = None,
    confidence: float = 0.5,
    size: tuple[int, int] = (640, 480),
) -> Face:
    """A capture with one face the model predicted as `predicted`, written straight to the database, and
    reviewed as `true_label` when given. For tests of what reads rows (the dashboard, the aggregates), which
    need chosen predictions that no real model can be made to give; everything else uses make_capture."""
    capture = Capture.objects.create(
        owner=owner,
        image=f"captures/{owner.pk}/test.jpg",
        thumbnail=f"captures/{owner.pk}/test-thumbnail.jpg",
        width=size[0],
        height=size[1],
        model_version=model_version,
        created_at=when,
    )
    probabilities = {label: confidence if label == predicted else (1 - confidence) / 6 for label in EXPRESSIONS}
    reviewed = true_label is not None
    return Face.objects.create(
        capture=capture,
        model_version=model_version,
        box_x=10,
        box_y=10,
        box_width=100,
        box_height=100,
        predicted_label=predicted,
        confidence=confidence,
        probabilities=probabilities,
        true_label=true_label,
        is_correct=true_label == predicted if reviewed else None,
        reviewed_by=owner if reviewed else None,
        reviewed_at=when if reviewed else None,
        created_at=when,
    )


def two_version_models(models_dir: Path, tiny_models_dir: Path) -> Path:
    """A models folder holding tiny-1 and tiny-2, the same weights under a later version made from tiny-1."""
    shutil.copytree(tiny_models_dir / "tiny-1", models_dir / "tiny-1")
    shutil.copytree(tiny_models_dir / "tiny-1", models_dir / "tiny-2")
    metadata = json.loads((models_dir / "tiny-2" / "model.json").read_text())
    metadata.update(version="tiny-2", created_at="2099-01-01T00:00:00+00:00", parent="tiny-1")
    (models_dir / "tiny-2" / "model.json").write_text(json.dumps(metadata))
    return models_dir
