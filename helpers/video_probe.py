"""Opening a video and reading what it is: duration, fps, size, frame count, codec, display rotation.

The lowest layer of the video helpers (:mod:`helpers.video_plan`, :mod:`helpers.video_seek` and
:mod:`helpers.video` build on it). Decoding uses PyAV (``av``), whose wheel ships its own FFmpeg; FFmpeg errors
never escape: they become :class:`~helpers.errors.VideoError` with what to do next. A path is checked before
FFmpeg opens it: a folder, a device or a FIFO is refused at once (FFmpeg would read ``/dev/zero`` forever).

Taught in notebooks/08_video.ipynb.

>>> format_timestamp(75.04)
'01:15.0'
>>> video_info("images/sample_video.mp4")                               # doctest: +SKIP
VideoInfo(duration=28.0, fps=24.0, width=1280, height=720, frame_count=672, codec='h264', rotation=0)
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from helpers.errors import ImageNotFoundError, VideoError

__all__ = ["Opened", "PathLike", "VideoInfo", "decode_errors", "format_timestamp", "open_video", "video_info"]

PathLike = str | os.PathLike[str]

# Demuxers that read still images, not videos (FFmpeg names them "<codec>_pipe", or "image2").
_STILL_IMAGE_FORMATS = ("image2",)
_SAMPLE_PATH = "images/sample_video.mp4"


@dataclass(frozen=True)
class VideoInfo:
    """What a video is, read from its container headers (and its first frame, for the rotation).

    ``duration`` is in seconds (the last frame's end, so a 24 fps clip of 672 frames lasts 28.0 s);
    ``fps`` is the average frame rate; ``codec`` is FFmpeg's decoder name (``"h264"``, ``"vp9"``...).
    ``width`` x ``height`` is the picture as it is meant to be shown: phone videos filmed upright are often
    stored sideways with a rotation to apply (``rotation``, degrees counterclockwise, e.g. -90), the video
    counterpart of an EXIF orientation. Sampled frames are turned upright.

    >>> video_info("images/sample_video.mp4")                               # doctest: +SKIP
    VideoInfo(duration=28.0, fps=24.0, width=1280, height=720, frame_count=672, codec='h264', rotation=0)

    Taught in notebooks/08_video.ipynb.
    """

    duration: float
    fps: float
    width: int
    height: int
    frame_count: int
    codec: str
    rotation: int = 0


def format_timestamp(seconds: float) -> str:
    """``MM:SS.s`` (``H:MM:SS.s`` from one hour), rounded to a tenth of a second.

    >>> format_timestamp(3)
    '00:03.0'
    >>> format_timestamp(59.96)
    '01:00.0'
    >>> format_timestamp(3725.25)
    '1:02:05.2'

    Taught in notebooks/08_video.ipynb.
    """
    tenths = round(seconds * 10)
    minutes, tenths = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    text = f"{minutes:02d}:{tenths // 10:02d}.{tenths % 10}"
    return f"{hours}:{text}" if hours else text


# --- opening ------------------------------------------------------------------------------------------

@dataclass
class Opened:
    """An open video: the container and its video stream, what it is, and its time base and exact duration."""

    container: Any  # av.container.InputContainer
    stream: Any  # av.video.stream.VideoStream
    info: VideoInfo
    start_pts: int
    time_base: Fraction
    duration: Fraction  # exact, seconds


def _ffmpeg_reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def decode_errors(name: str) -> VideoError:
    """The error for FFmpeg failing in the middle of a video.

    >>> str(decode_errors("clip.mp4")).startswith("FFmpeg could not decode 'clip.mp4'.")
    True
    """
    return VideoError(f"FFmpeg could not decode {name!r}.",
                      fix="the file is damaged or cut short: export or download it again.")


def _check_path(path: PathLike) -> Path:
    if isinstance(path, bytes | bytearray):
        raise VideoError("sample_frames takes the path of a video file, not its bytes.",
                         fix="save the bytes to a file (e.g. clip.mp4) and pass its path.")
    p = Path(path)
    if not p.exists():
        raise ImageNotFoundError(f"No video at {str(path)!r}.", source=str(path),
                                 fix=f"check the path (relative to {Path.cwd().name!r}, the current folder); "
                                     f"the course's sample is {_SAMPLE_PATH}.")
    if p.is_dir():
        raise ImageNotFoundError(f"{str(path)!r} is a folder, not a video file.", source=str(path),
                                 fix="pass the path of a video file inside it, e.g. clip.mp4.")
    info = p.stat()
    if not stat.S_ISREG(info.st_mode):
        raise VideoError(f"{str(path)!r} is a device, a pipe or a socket, not a video file; it was not read.",
                         fix="pass the path of a video file, e.g. clip.mp4.")
    if info.st_size == 0:
        raise VideoError(f"{p.name!r} is empty (0 bytes).",
                         fix="the download or export did not finish: make or download the video again.")
    return p


def open_video(path: PathLike) -> Opened:
    """Open a video for reading; every failure becomes a VideoError/ImageNotFoundError that says what to do."""
    p = _check_path(path)
    try:
        container = av.open(str(p), mode="r")
    except av.error.FFmpegError as err:
        raise VideoError(f"{p.name!r} is not a video FFmpeg can read ({_ffmpeg_reason(err)}).",
                         fix="pass a video file (.mp4, .mov, .webm, .mkv...); if it is one, it is damaged "
                             "or cut short: export or download it again.") from None
    try:
        return _describe(p, container)
    except BaseException:
        container.close()
        raise


def _describe(p: Path, container: Any) -> Opened:
    fmt = container.format.name
    if fmt.endswith("_pipe") or fmt in _STILL_IMAGE_FORMATS:
        kind = fmt.removesuffix("_pipe")
        if fmt in _STILL_IMAGE_FORMATS and container.streams.video:
            kind = container.streams.video[0].codec_context.name.removeprefix("m")  # mjpeg -> jpeg
        raise VideoError(f"{p.name!r} is a still image ({kind}), not a video.",
                         fix="send images with helpers.images.image_part(...); use sample_frames for videos.")
    if not container.streams:
        raise VideoError(f"{p.name!r} is not a video FFmpeg can read (no streams found in it).",
                         fix="pass a video file (.mp4, .mov, .webm, .mkv...); if it is one, it is damaged "
                             "or cut short: export or download it again.")
    if not container.streams.video:
        raise VideoError(f"{p.name!r} has no video stream (streams: "
                         f"{', '.join(s.type for s in container.streams) or 'none'}).",
                         fix="pass a file with pictures in it; an audio-only file cannot be sampled.")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame + slice threads, for both methods
    # A fixed thread count, not "all cores": with frame threading the decoder runs ahead of the target by
    # about one frame per thread, so `decoded` (printed by the video notebook) would differ between machines.
    stream.codec_context.thread_count = 4
    tb = stream.time_base
    if tb is None:
        raise VideoError(f"{p.name!r} has no time base, so frames have no timestamps.",
                         fix="re-mux it into MP4, e.g. `ffmpeg -i IN -c copy OUT.mp4`.")
    start_pts = stream.start_time or 0
    duration, frame_count = _duration_and_count(container, stream, start_pts)
    if frame_count == 0 or duration <= 0:
        raise VideoError(f"{p.name!r} contains no video frames.",
                         fix="the recording or export is empty: make or download it again.")
    if frame_count == 1:
        raise VideoError(f"{p.name!r} has a single frame: it is a still image, not a video.",
                         fix="send it with helpers.images.image_part(...).")
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else frame_count / float(duration)
    cc = stream.codec_context
    rotation = _rotation(p, container, stream, start_pts)
    width, height = (cc.height, cc.width) if rotation in (90, -90) else (cc.width, cc.height)
    info = VideoInfo(duration=float(duration), fps=fps, width=width, height=height,
                     frame_count=frame_count, codec=cc.name, rotation=rotation)
    return Opened(container, stream, info, start_pts, Fraction(tb), duration)


def _rotation(p: Path, container: Any, stream: Any, start_pts: int) -> int:
    """The display rotation (0, 90, 180 or -90 degrees counterclockwise), read from the first frame.

    FFmpeg exposes the display matrix of phone videos on decoded frames, so one frame is decoded.
    """
    try:
        first = next(container.decode(stream), None)
        container.seek(start_pts, stream=stream)
    except av.error.FFmpegError:
        raise decode_errors(p.name) from None
    if first is None:
        raise VideoError(f"{p.name!r} contains no picture that can be decoded.",
                         fix="the file is damaged or cut short: export or download it again.")
    angle = round((first.rotation or 0) / 90) * 90
    return {270: -90, -270: 90, -180: 180}.get(angle, angle)


def _duration_and_count(container: Any, stream: Any, start_pts: int) -> tuple[Fraction, int]:
    """Duration (exact seconds) and frame count from the headers, else by reading packets (not decoding)."""
    tb = Fraction(stream.time_base)
    duration = Fraction(stream.duration) * tb if stream.duration else None
    count = stream.frames or 0
    if duration is not None and count > 0:
        return duration, count
    # Headers are incomplete (raw streams, some WebM/MKV): read every packet once. No decoding.
    end, packets = None, 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            packets += 1
            packet_end = packet.pts + (packet.duration or 0)
            end = packet_end if end is None else max(end, packet_end)
        container.seek(0)
    except av.error.FFmpegError as err:
        raise VideoError(f"Could not read the video's packets ({_ffmpeg_reason(err)}).",
                         fix="the file is damaged or cut short: export or download it again.") from None
    if duration is None:
        if end is not None:
            duration = (end - start_pts) * tb
        elif container.duration:
            duration = Fraction(container.duration, av.time_base)
        else:
            duration = Fraction(0)
    return duration, count or packets


def video_info(path: PathLike) -> VideoInfo:
    """Duration, fps, size, frame count, codec and rotation of a video: its headers plus its first frame.

    >>> video_info("images/sample_video.mp4")                               # doctest: +SKIP
    VideoInfo(duration=28.0, fps=24.0, width=1280, height=720, frame_count=672, codec='h264')

    Raises :class:`~helpers.errors.ImageNotFoundError` for a missing path and
    :class:`~helpers.errors.VideoError` for anything that is not a readable video.

    Taught in notebooks/08_video.ipynb.
    """
    opened = open_video(path)
    opened.container.close()
    return opened.info

