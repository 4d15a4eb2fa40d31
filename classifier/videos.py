"""Uploaded videos: checked before anything is stored, their frames sampled, the faces in them followed.

Read with PyAV (`av`), whose wheels carry FFmpeg's libraries, rather than OpenCV's own FFmpeg build,
which the site already has: PyAV says what a file is and what is wrong with it, and OpenCV does not.
For a file cut short, an audio-only file, a WebM named .mp4 or a text file, OpenCV's VideoCapture
answers only "not opened" (or, for a cut MP4 whose index comes first, claims every frame), while PyAV
names the container, lists the streams, and gives each packet's time, so each refusal can say why.
Decoding speed is no reason to choose (60 s of 640x480 H.264 at 30 frames/s, 5 frames/s kept as
pictures, best of 3, load average 4.6 on 2 cores: PyAV 0.63 s with frame threads, OpenCV 0.53 s),
since finding and reading the faces takes ten times as long.

Nothing here writes anywhere or touches the database.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO

import av
from PIL import Image

from classifier.images import declared_body_too_large

# FFmpeg's demuxers for the formats we take.
MP4_DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"  # MP4 and MOV (QuickTime): one family, ISO base media
MATROSKA_DEMUXER = "matroska,webm"  # WebM is Matroska with only these video codecs
WEBM_CODECS = {"vp8", "vp9", "av1"}
ACCEPTED_FORMATS_TEXT = "MP4, WebM or MOV"
# What a file's name or declared type says it is, by family: MP4 and MOV are the same format to FFmpeg.
CLAIMED_FAMILIES = {
    ".mp4": "MP4",
    ".m4v": "MP4",
    ".mov": "MP4",
    ".qt": "MP4",
    ".webm": "WebM",
    "video/mp4": "MP4",
    "video/quicktime": "MP4",
    "video/webm": "WebM",
}
# Other formats FFmpeg reads, by demuxer, as a refusal names them.
OTHER_FORMATS = {
    "avi": "an AVI video",
    "gif": "a GIF animation",
    "png_pipe": "a PNG image",
    "jpeg_pipe": "a JPEG image",
    "webp_pipe": "a WebP image",
    "mpegts": "an MPEG transport stream",
    "mpeg": "an MPEG program stream",
    "flv": "a Flash video",
    "asf": "a Windows Media file",
    "ogg": "an Ogg file",
    "mp3": "MP3 sound",
    "wav": "WAV sound",
    "image2": "a still image",
}
# A demuxed stream may end this much before the length its container declares without being cut short
# (rounding, a last frame's duration): a second, or 2% of a long video.
CUT_SHORT_SLACK_SECONDS = 1.0
CUT_SHORT_SLACK_SHARE = 0.02
# Packets read to find the first frame: a decoder with frame threads holds back a few before its first.
FIRST_FRAME_PACKETS = 64
TIME_TOLERANCE = 1e-3  # seconds: frame times are rationals, sample times floats

# Following a face from one sample to the next (FaceTracker).
TRACK_MIN_OVERLAP = 0.3  # intersection over union at which two boxes are the same face
TRACK_MAX_SHIFT = 1.0  # else: the centre moved at most this many box sides
# A face not found for longer than the longer of these is a new face when it returns: a second, or this many
# sample intervals, so that at slow rates the next sample can still continue a track (the same allowance as
# charts.TIMELINE_GAP_SAMPLES, which breaks a timeline's line).
TRACK_MAX_GAP_SECONDS = 1.0
TRACK_MAX_GAP_SAMPLES = 1.5


class VideoRefused(Exception):
    """The upload cannot be used; `message` says why, `too_large` marks a limit (HTTP 413)."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.message = message
        self.too_large = too_large


class VideoUnreadable(Exception):
    """A checked video that stops being readable part way through; the message says where and why."""


def upload_limits_text(*, max_bytes: int, max_seconds: int, max_pixels: int) -> str:
    """What a video upload may be, in the words the page and the API's schema use."""
    return (
        f"{ACCEPTED_FORMATS_TEXT}; up to {max_bytes // 2**20} MB, {_clock(max_seconds)} "
        f"and {max_pixels / 1_000_000:.1f} megapixels a frame (4K)"
    )


def refuse_a_declared_oversized_video(content_length: str | None, *, max_bytes: int) -> None:
    """Refuse (VideoRefused, too large) a request whose Content-Length announces a video over the limit,
    before its body is read: a huge upload is not first spooled to disk. Both upload doors call it."""
    if declared_body_too_large(content_length, max_bytes=max_bytes):
        raise VideoRefused(f"The upload is over the limit of {max_bytes // 2**20} MB.", too_large=True)


@dataclass(frozen=True)
class VideoInfo:
    """What the checks found in an accepted video."""

    container: str  # "MP4", "MOV" or "WebM"
    codec: str  # FFmpeg's name, e.g. "h264", "vp9"
    width: int
    height: int
    duration: float  # seconds, from the first frame to the end of the last
    frame_rate: float | None  # the file's average frames per second, when it says
    frames: int  # video packets: one frame each


def probe(
    file: IO[bytes],
    *,
    name: str,
    content_type: str | None,
    size: int,
    max_bytes: int,
    max_seconds: int,
    max_pixels: int,
) -> VideoInfo:
    """Check an upload all through, without decoding more than its first frame; or VideoRefused.

    Every packet is read (demuxed, not decoded), so a file cut short shows as packets that stop before
    the length its container declares, and the real length is measured, not taken on the file's word.
    """
    if size == 0:
        raise VideoRefused("The file is empty.")
    if size > max_bytes:
        megabytes = math.ceil(size / 2**20 * 10) / 10  # rounded up: never said to be the limit's size
        raise VideoRefused(f"The file is {megabytes:.1f} MB; the limit is {max_bytes // 2**20} MB.", too_large=True)
    with _opened(file) as container:
        container_name, stream = _video_stream(container, name=name, content_type=content_type)
        codec = stream.codec_context.name
        _refuse_large_frames(stream.codec_context.width, stream.codec_context.height, max_pixels)
        declared = container.duration / av.time_base if container.duration else None
        if declared is not None and declared > max_seconds + CUT_SHORT_SLACK_SECONDS:
            raise VideoRefused(_too_long(declared, max_seconds), too_large=True)
        start, end, frames, ends = _demuxed_extent(container, stream)
        frame_rate = float(stream.average_rate) if stream.average_rate else None
        stream_index = stream.index
    duration = end - start
    if duration > max_seconds + CUT_SHORT_SLACK_SECONDS:
        raise VideoRefused(_too_long(duration, max_seconds), too_large=True)
    if declared is not None and ends + max(CUT_SHORT_SLACK_SECONDS, CUT_SHORT_SLACK_SHARE * declared) < declared:
        raise VideoRefused(
            f"The video is cut short: it says it lasts {declared:.1f} s, but its data stops at {ends:.1f} s. "
            "Was the upload interrupted?"
        )
    if frames == 0:
        raise VideoRefused("The video has no frames.")
    width, height = _first_frame_size(file, stream_index)
    _refuse_large_frames(width, height, max_pixels)
    return VideoInfo(
        container=container_name,
        codec=codec,
        width=width,
        height=height,
        duration=round(duration, 3),
        frame_rate=round(frame_rate, 3) if frame_rate else None,
        frames=frames,
    )


@contextmanager
def _opened(file: IO[bytes]) -> Iterator["av.container.InputContainer"]:
    """The upload opened by PyAV from its start; a file it cannot open refused, saying whether it looked
    like a damaged video or like something else."""
    file.seek(0)
    head = file.read(64)
    file.seek(0)
    try:
        container = av.open(file, mode="r")
    except (av.FFmpegError, OSError, ValueError):
        if _looks_like_a_video(head):
            raise VideoRefused("The video is damaged or incomplete (was the upload cut short?).") from None
        raise VideoRefused(f"This file is not a video we can read: upload an {ACCEPTED_FORMATS_TEXT} video.") from None
    with container:
        yield container


def _looks_like_a_video(head: bytes) -> bool:
    """Whether the first bytes are those of an MP4/MOV (an `ftyp`, `moov`, `mdat` or `wide` box at the start)
    or of a WebM (EBML's magic number): such a file that FFmpeg cannot open is damaged, not another kind."""
    return head[4:8] in {b"ftyp", b"moov", b"mdat", b"wide", b"free"} or head.startswith(b"\x1a\x45\xdf\xa3")


def _video_stream(container, *, name: str, content_type: str | None) -> tuple[str, "av.video.stream.VideoStream"]:
    """The container's name for people ("MP4", "MOV", "WebM") and its first video stream; or VideoRefused
    for a format we do not take, a file whose name or type claims another format, or no video at all."""
    demuxer = container.format.name
    streams = _moving_picture_streams(container)
    if demuxer == MP4_DEMUXER:
        container_name, family = ("MOV" if container.metadata.get("major_brand") == "qt  " else "MP4"), "MP4"
    elif demuxer == MATROSKA_DEMUXER and all(stream.codec_context.name in WEBM_CODECS for stream in streams):
        container_name = family = "WebM"
    elif demuxer == MATROSKA_DEMUXER:
        raise VideoRefused(f"This file is a Matroska (MKV) file, not WebM: upload an {ACCEPTED_FORMATS_TEXT} video.")
    else:
        what = OTHER_FORMATS.get(demuxer, f"{container.format.long_name} ({demuxer})")
        raise VideoRefused(f"This file is {what}, not a video we take: upload an {ACCEPTED_FORMATS_TEXT} video.")

    for claim in (PurePath(name or "").suffix.lower(), (content_type or "").lower()):
        claimed = CLAIMED_FAMILIES.get(claim)
        if claimed is not None and claimed != family:
            said = f"is named {PurePath(name).name}" if claim.startswith(".") else f"says it is {claim}"
            raise VideoRefused(
                f"The file {said} but holds a{'n' if family == 'MP4' else ''} {family} video: "
                "rename it to match, then upload it again."
            )
    if not streams:
        if container.streams.audio:
            raise VideoRefused("The file holds only sound: there is no video in it.")
        raise VideoRefused("The file holds no video.")
    return container_name, streams[0]


def _moving_picture_streams(container) -> list:
    """The video streams, less a cover picture (a sound file's "video" stream of one still)."""
    return [stream for stream in container.streams.video if not stream.disposition & av.stream.Disposition.attached_pic]


def _refuse_large_frames(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise VideoRefused(
            f"The video's frames are {width}x{height} pixels ({width * height / 1_000_000:.1f} megapixels); "
            f"the limit is {max_pixels / 1_000_000:.1f} megapixels (4K).",
            too_large=True,
        )


def _too_long(seconds: float, max_seconds: int) -> str:
    return f"The video lasts {_clock(seconds)}; the limit is {_clock(max_seconds)}."


def _clock(seconds: float) -> str:
    """A length in words: "45 s", "10 min", "1 min 5 s"."""
    minutes, rest = divmod(round(seconds), 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _demuxed_extent(container, stream) -> tuple[float, float, int, float]:
    """Every packet read: the video stream's first time and end, its packet count, and where the data of
    any stream ends (a sound track may run on after the picture), in seconds; or VideoRefused."""
    start = end = None
    frames, ends = 0, 0.0
    try:
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue  # the flush packet each stream ends with
            packet_start = float(packet.pts * packet.time_base)
            packet_end = packet_start + float((packet.duration or 0) * packet.time_base)
            ends = max(ends, packet_end)
            if packet.stream.index != stream.index:
                continue
            frames += 1
            start = packet_start if start is None else min(start, packet_start)
            end = packet_end if end is None else max(end, packet_end)
    except av.FFmpegError:
        raise VideoRefused("The video is damaged: its data cannot be read through to the end.") from None
    return start or 0.0, end or 0.0, frames, ends


def _first_frame_size(file: IO[bytes], stream_index: int) -> tuple[int, int]:
    """The first frame's real size, upright: a container may declare one size and its pictures be another."""
    with _opened(file) as container:
        stream = container.streams[stream_index]
        try:
            for number, packet in enumerate(container.demux(stream)):
                for frame in packet.decode():
                    turned = round(frame.rotation) % 180 == 90  # shown on its side: see _upright_picture
                    return (frame.height, frame.width) if turned else (frame.width, frame.height)
                if number >= FIRST_FRAME_PACKETS:
                    break
        except av.FFmpegError:
            pass
    raise VideoRefused("The video is damaged: its first frame cannot be decoded.")


@dataclass(frozen=True)
class SampledFrame:
    time: float  # seconds from the first frame
    picture: Image.Image  # RGB, upright, at most max_side pixels on its long side


def sampled_frames(
    file: IO[bytes] | str, *, samples_per_second: float, max_side: int, max_pixels: int
) -> Iterator[SampledFrame]:
    """The video's frames at `samples_per_second` (each the first frame at or after its sample time; at
    most every frame), upright as the file says to show them, scaled down to `max_side`.

    Raises VideoUnreadable when a frame cannot be decoded or is larger than `max_pixels` (a stream may
    change its size part way through).
    """
    if not isinstance(file, str):
        file.seek(0)
    with av.open(file, mode="r") as container:
        stream = _moving_picture_streams(container)[0]
        stream.thread_type = "AUTO"  # frame threads: 30% faster on H.264 here
        start, next_sample, time = None, 0.0, 0.0
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    raise VideoUnreadable(f"A frame after {time:.1f} s has no time stamp.")
                if frame.width * frame.height > max_pixels:
                    raise VideoUnreadable(
                        f"The frame at {time:.1f} s is {frame.width}x{frame.height} pixels, over the limit."
                    )
                start = frame.time if start is None else start
                time = frame.time - start
                if time + TIME_TOLERANCE < next_sample:
                    continue
                next_sample = (math.floor(time * samples_per_second + TIME_TOLERANCE) + 1) / samples_per_second
                yield SampledFrame(time=round(time, 3), picture=_upright_picture(frame, max_side))
        except av.FFmpegError as error:
            raise VideoUnreadable(f"The video cannot be read after {time:.1f} s ({error}).") from error


# PIL's turns for FFmpeg's display rotations, which are counter-clockwise degrees.
_TURNS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


def _upright_picture(frame: "av.VideoFrame", max_side: int) -> Image.Image:
    """The frame as an RGB picture, scaled by FFmpeg (cheaper than a full-size copy), then turned as its
    display matrix says: a phone records a portrait video as landscape frames marked "turn by 90"."""
    scale = min(1.0, max_side / max(frame.width, frame.height))
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    picture = frame.to_image(width=width, height=height) if scale < 1 else frame.to_image()
    turn = _TURNS.get(round(frame.rotation) % 360)
    return picture.transpose(turn) if turn is not None else picture


Box = tuple[int, int, int, int]


def overlap(first: Box, second: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    left, top = max(first[0], second[0]), max(first[1], second[1])
    right = min(first[0] + first[2], second[0] + second[2])
    bottom = min(first[1] + first[3], second[1] + second[3])
    intersection = max(0, right - left) * max(0, bottom - top)
    union = first[2] * first[3] + second[2] * second[3] - intersection
    return intersection / union if union else 0.0


def _likeness(previous: Box, box: Box) -> float:
    """How surely `box` is the face last seen at `previous`: their overlap when at least TRACK_MIN_OVERLAP;
    else, for a face that moved fast, a score under any such overlap that falls with the centre's shift
    (in the boxes' mean side), down to 0 at TRACK_MAX_SHIFT; 0 when it is no match."""
    shared = overlap(previous, box)
    if shared >= TRACK_MIN_OVERLAP:
        return shared
    side = (previous[2] + previous[3] + box[2] + box[3]) / 4
    shift = math.dist(
        (previous[0] + previous[2] / 2, previous[1] + previous[3] / 2), (box[0] + box[2] / 2, box[1] + box[3] / 2)
    )
    if side == 0 or shift >= TRACK_MAX_SHIFT * side:
        return 0.0
    return TRACK_MIN_OVERLAP * (1 - shift / (TRACK_MAX_SHIFT * side))


class FaceTracker:
    """Numbers the faces of a video's samples, in time order, so that one face keeps its number: its track.

    The rule, sample by sample: every face is compared with where each track was last seen (at most
    TRACK_MAX_GAP_SECONDS or TRACK_MAX_GAP_SAMPLES sample intervals ago, whichever is longer, so that at
    slow rates a face found in the next sample can continue its track): the same face if the boxes
    overlap by TRACK_MIN_OVERLAP (intersection over union) or more, or failing that, if the centre moved
    less than TRACK_MAX_SHIFT box sides. The surest pairs are taken first, and each track and each face
    is taken once, so with several faces two never merge into one track; faces that cross each other may
    swap numbers, and a face lost for more than the gap (hidden, turned away) comes back with a new
    number. New faces are numbered in the order they are given (ml.faces' reading order).
    """

    def __init__(self, *, samples_per_second: float) -> None:
        self._max_gap = max(TRACK_MAX_GAP_SECONDS, TRACK_MAX_GAP_SAMPLES / samples_per_second)
        self._tracks: dict[int, tuple[float, Box]] = {}  # number: when and where last seen
        self._count = 0

    @property
    def count(self) -> int:
        """How many tracks there have been."""
        return self._count

    def assign(self, time: float, boxes: list[Box]) -> list[int]:
        """The track number of each box found at `time`."""
        self._tracks = {number: seen for number, seen in self._tracks.items() if time - seen[0] <= self._max_gap}
        pairs = sorted(
            (
                (likeness, number, index)
                for number, (_, previous) in self._tracks.items()
                for index, box in enumerate(boxes)
                if (likeness := _likeness(previous, box)) > 0
            ),
            key=lambda pair: (-pair[0], pair[1], pair[2]),
        )
        numbers: list[int | None] = [None] * len(boxes)
        taken = set()
        for _, number, index in pairs:
            if number not in taken and numbers[index] is None:
                numbers[index] = number
                taken.add(number)
        for index, number in enumerate(numbers):
            if number is None:
                self._count += 1
                numbers[index] = self._count
        for number, box in zip(numbers, boxes, strict=True):
            self._tracks[number] = (time, box)
        return numbers
