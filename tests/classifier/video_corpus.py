"""Videos made by the tests themselves with PyAV (a real face moving across the frame, and bad files), and
helpers to upload and read them."""

import functools
import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from classifier import services, video_reading
from classifier.models import Video
from tests.classifier.corpus import astronaut, encode, nothing_stored

SIZE = (320, 240)
FACE_SIDE = 120  # the astronaut's head, pasted this large: found in every frame


def portrait(side: int = FACE_SIDE) -> Image.Image:
    return astronaut().crop((62, 0, 222, 160)).resize((side, side))


def moving_face_frames(seconds: float, fps: int, size: tuple[int, int] = SIZE, faces: int = 1) -> Iterator[Image.Image]:
    """The astronaut gliding left to right across a grey wall; with faces=2, a second, smaller one still
    in the other corner, mirrored."""
    width, height = size
    head = portrait(min(FACE_SIDE, height // 2) if faces == 2 else FACE_SIDE)
    count = round(seconds * fps)
    for index in range(count):
        frame = Image.new("RGB", size, (90, 90, 90))
        x = round((width - head.width) * index / max(1, count - 1))
        frame.paste(head, (x, 0 if faces == 2 else (height - head.height) // 2))
        if faces == 2:
            frame.paste(head.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (width - head.width - x, height - head.height))
        yield frame


def encode_video(
    frames: Iterator[Image.Image],
    *,
    fps: int,
    format: str = "mp4",
    codec: str = "libx264",
    options: dict | None = None,
    rotation: int = 0,
    pix_fmt: str = "yuv420p",
) -> bytes:
    """The frames as a video file, encoded by PyAV (FFmpeg). `rotation`: the display matrix's turn,
    counter-clockwise degrees, as a phone marks a portrait video."""
    frames = iter(frames)
    first = next(frames)
    # A real file, not a buffer: the MP4 muxer reads its output back to move the index to the front.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"video.{format}"
        _write(
            path,
            first,
            frames,
            fps=fps,
            format=format,
            codec=codec,
            options=options,
            rotation=rotation,
            pix_fmt=pix_fmt,
        )
        return path.read_bytes()


def _write(
    path: Path, first: Image.Image, frames: Iterator[Image.Image], *, fps, format, codec, options, rotation, pix_fmt
):
    with av.open(str(path), "w", format=format, options=options or {}) as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height = first.size
        stream.pix_fmt = pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        for frame in (first, *frames):
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)


def face_video(seconds: float = 2.0, fps: int = 10, **options) -> bytes:
    """A short H.264 MP4 of the astronaut moving across the frame: what the tests upload."""
    faces = options.pop("faces", 1)
    size = options.pop("size", SIZE)
    return encode_video(moving_face_frames(seconds, fps, size, faces), fps=fps, **options)


def face_webm(seconds: float = 2.0, fps: int = 10) -> bytes:
    return face_video(seconds, fps, format="webm", codec="libvpx-vp9")


def face_mov(seconds: float = 2.0, fps: int = 10) -> bytes:
    return face_video(seconds, fps, format="mov")


def sideways_face_video(*, marked: bool = True) -> bytes:
    """The astronaut filmed lying on her side (the frames turned a quarter clockwise), marked "turn a
    quarter counter-clockwise to show", as a phone marks a portrait video; or not marked."""
    frames = (frame.transpose(Image.Transpose.ROTATE_270) for frame in moving_face_frames(1.0, 10))
    return encode_video(frames, fps=10, rotation=90 if marked else 0)


def faceless_video() -> bytes:
    """A second of the grey wall alone."""
    return encode_video((Image.new("RGB", SIZE, (90, 90, 90)) for _ in range(10)), fps=10)


def audio_only(format: str = "mp4", codec: str = "aac") -> bytes:
    """One second of silence, no picture."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=format) as output:
        stream = output.add_stream(codec, rate=48000)
        samples = stream.codec_context.frame_size or 1024
        for index in range(48000 // samples):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, index * samples
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


@functools.cache
def huge_frame_video() -> bytes:
    """One black frame of 10000x10000 pixels, H.264 at its fastest preset (made once: it takes ~2 s)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "huge.mp4"
        with av.open(str(path), "w") as output:
            stream = output.add_stream("libx264", rate=1, options={"preset": "ultrafast"})
            stream.width = stream.height = 10000
            frame = av.VideoFrame(10000, 10000, "yuv420p")  # its planes filled, not converted from RGB
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.pts = 0
            for packet in (*stream.encode(frame), *stream.encode()):
                output.mux(packet)
        return path.read_bytes()


def long_video(seconds: int) -> bytes:
    """A tiny video that lasts `seconds`: one 64x64 frame a second."""
    frames = (Image.new("RGB", (64, 64), (index % 256, 0, 0)) for index in range(seconds))
    return encode_video(frames, fps=1)


def cut(data: bytes, share: float = 0.5) -> bytes:
    return data[: int(len(data) * share)]


def index_first_mp4() -> bytes:
    """An MP4 with its index (moov) before the frames, as made for streaming: cut short, it still opens."""
    return face_video(4.0, 10, options={"movflags": "+faststart"})


# name, content, HTTP status and a piece of the reason
REFUSED_VIDEOS: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "notes.mp4": (lambda: b"These are my notes, not a video.\n" * 40, 400, "not a video we can read"),
    "empty.mp4": (lambda: b"", 400, "empty"),
    "cut.mp4": (lambda: cut(face_video()), 400, "damaged or incomplete"),
    "cut-index-first.mp4": (lambda: cut(index_first_mp4()), 400, "cut short"),
    "cut.webm": (lambda: cut(face_webm(4.0)), 400, "cut short"),
    "sound.mp4": (lambda: audio_only(), 400, "only sound"),
    "sound.webm": (lambda: audio_only("webm", "libopus"), 400, "only sound"),
    "huge.mp4": (huge_frame_video, 413, "10000x10000 pixels"),
    "eleven-minutes.mp4": (lambda: long_video(11 * 60), 413, "lasts 11 min; the limit is 10 min."),
    "webm-named.mp4": (lambda: face_webm(), 400, "named webm-named.mp4 but holds a WebM video"),
    "mp4-named.webm": (lambda: face_video(), 400, "named mp4-named.webm but holds an MP4 video"),
    "photo-named.mp4": (lambda: encode(astronaut(), "PNG"), 400, "a PNG image, not a video we take"),
    "gif-named.mov": (lambda: encode(astronaut(), "GIF"), 400, "a GIF animation, not a video we take"),
    "clip.mkv": (lambda: face_video(format="matroska"), 400, "Matroska (MKV) file, not WebM"),
}


def upload(name: str, content: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def read(owner, content: bytes, name: str = "clip.mp4", **options) -> Video:
    """A video uploaded through the service and read by the worker's own function, as its task runs it."""
    video = services.video_create(owner=owner, file=upload(name, content), **options)
    video_reading.video_read(video.pk)
    video.refresh_from_db()
    return video


def nothing_kept(media_dir: Path) -> bool:
    return not Video.objects.exists() and nothing_stored(media_dir)
