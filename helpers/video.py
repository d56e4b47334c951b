"""Video for vision chat models: sample a few frames, with their timestamps, under a token budget.

Chat Completions takes images, not video. To ask about a clip you send some of its frames as images,
each preceded by its time ("Frame at 00:03.0"), and every frame costs image tokens. This module

* reads what a video is (:func:`video_info`: duration, fps, size, frame count, codec, rotation),
* plans which moments to send (:func:`plan_timestamps`: every N seconds, N frames spread evenly, or as
  many frames as a token budget allows),
* fetches exactly those frames by *seeking* (:func:`sample_frames`): jump to the keyframe before each
  moment and decode only from there, instead of decoding the whole video,
* resizes each frame to the size the model really looks at (``helpers.tokens.scaled_size``), so a frame
  costs exactly ``helpers.tokens.image_tokens`` and no upload byte is wasted,
* turns frames into Chat Completions content parts (:func:`frames_to_parts`).


One concept, one module (issue 20 merged ``video_probe``, ``video_seek`` and ``video_plan`` into it), top to
bottom: opening a video and reading what it is (a path is checked before FFmpeg opens it: a folder, a device or a
FIFO is refused at once); the seeking reader (decoding only from the keyframe before each moment, and skipping
frames no other frame refers to, makes the work grow with the frames asked for, not the video's length); the
plan of which moments to send; sampling and packaging.

:func:`sample_frames_naive` is the usual cookbook approach (decode every frame, keep every Nth), kept for
comparison: it is much slower on long videos (``benchmarks/video_sampling.py`` measures both).

>>> from helpers.video import sample_frames, frames_to_parts
>>> frames = sample_frames("images/sample_video.mp4", max_frames=6, detail="low", model="gpt-4o")  # doctest: +SKIP
>>> [f.label for f in frames][:2], frames.tokens                                                   # doctest: +SKIP
(['Frame at 00:02.3', 'Frame at 00:07.0'], 510)

Decoding uses PyAV (``av``), whose wheel ships its own FFmpeg. FFmpeg errors never escape: they become
:class:`~helpers.errors.VideoError` with what to do next.

Taught in notebooks/08_video.ipynb.

>>> format_timestamp(75.04)
'01:15.0'
>>> from fractions import Fraction
>>> centres(Fraction(28), 4)
[Fraction(7, 2), Fraction(21, 2), Fraction(35, 2), Fraction(49, 2)]
"""

from __future__ import annotations

import io
import itertools
import math
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from PIL import Image

from helpers import models, tokens
from helpers.errors import ImageNotFoundError, VideoError
from helpers.images import image_part

__all__ = [
    "Frame", "Opened", "PathLike", "SampledFrames", "SeekingReader", "VideoInfo", "centres",
    "decode_errors", "default_model", "format_timestamp", "frame_size", "frames_at", "frames_to_parts",
    "open_video", "plan", "plan_timestamps", "sample_frames", "sample_frames_naive", "video_info",
    "whole_number",
]


# ====================================================================================================
# video probe (formerly helpers/video_probe.py)
# ====================================================================================================

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

# ====================================================================================================
# video seek (formerly helpers/video_seek.py)
# ====================================================================================================

# How many packets to read at the start of a video to measure its keyframe interval.
_KEYFRAME_PROBE_PACKETS = 1000


class SeekingReader:
    """Returns the frame on screen at a time, seeking to the keyframe before it when that saves work.

    The frame on screen at time t is the last frame whose timestamp is <= t (the first frame for a t before
    it). To find it the reader decodes one frame past t (unless a frame starts exactly at t) and keeps that
    frame, so the next, later target continues from there.
    """

    def __init__(self, opened: Opened, name: str) -> None:
        self.opened = opened
        self.name = name
        self.decoded = 0
        self.seeks = 0
        self._packets: Iterator[Any] | None = None
        self._queue: list[Any] = []  # decoded frames not yet looked at
        self._flushed = False  # the decoder has been drained at the end of the video
        self._target = opened.start_pts  # the time (pts) being looked for
        rate = opened.stream.average_rate or opened.stream.guessed_rate or opened.info.fps
        self._frame_pts = max(1, round(1 / (Fraction(rate) * opened.time_base)))  # one frame's duration
        self._keyframe_gap = self._probe_keyframe_gap()
        # The latest keyframe decoded (or the start of the video, where decoding begins).
        self._last_key: int | None = opened.start_pts
        self._current: Any = None  # last frame handed out or passed (pts <= the last target)
        self._ahead: Any = None  # a decoded frame after the last target, not yet used

    def _probe_keyframe_gap(self) -> int:
        """Largest keyframe interval (pts units) among the first keyframes: read packets, decode nothing."""
        container, stream = self.opened.container, self.opened.stream
        keys: list[int] = []
        last_pts = None
        try:
            for n, packet in enumerate(container.demux(stream)):
                if packet.pts is not None:
                    last_pts = packet.pts
                    if packet.is_keyframe:
                        keys.append(packet.pts)
                if len(keys) >= 3 or n >= _KEYFRAME_PROBE_PACKETS:
                    break
            container.seek(self.opened.start_pts, stream=stream)
        except av.error.FFmpegError:
            raise decode_errors(self.name) from None
        if len(keys) >= 2:
            return max(b - a for a, b in itertools.pairwise(keys))
        # At most one keyframe in the probe window (or in the whole file): the interval is longer than it.
        return max(1, (last_pts or 0) - (keys[0] if keys else self.opened.start_pts)) + self._frame_pts

    def _decode_more(self) -> None:
        """Feed the decoder one packet (or the end-of-stream flush) and queue what comes out.

        Packets of frames that end before the target are decoded with ``skip_frame="NONREF"``: frames no
        other frame is predicted from (most B-frames) are skipped, since nobody will look at them. Frames
        that later frames depend on, and the frame on screen at the target, are always decoded.
        """
        cc = self.opened.stream.codec_context
        if self._packets is None:
            self._packets = self.opened.container.demux(self.opened.stream)
        try:
            packet = next(self._packets, None)
            while packet is not None and packet.size == 0 and (packet.pts is not None or packet.dts is not None):
                packet = next(self._packets, None)  # an empty packet inside the stream: nothing to decode
            if packet is None or packet.size == 0:  # the end (demux() finishes with an empty packet)
                self._flushed = True
                self._queue.extend(cc.decode(None))  # drain the frames still inside the decoder
                return
            ends = None if packet.pts is None else packet.pts + (packet.duration or self._frame_pts)
            cc.skip_frame = "NONREF" if ends is not None and ends <= self._target else "DEFAULT"
            self._queue.extend(cc.decode(packet))
        except av.error.FFmpegError:
            raise decode_errors(self.name) from None

    def _next_frame(self) -> Any:
        if self._ahead is not None:
            frame, self._ahead = self._ahead, None
            return frame
        while not self._queue and not self._flushed:
            self._decode_more()
        if not self._queue:
            return None
        frame = self._queue.pop(0)
        if frame.pts is None:
            raise VideoError(f"{self.name!r} has frames without timestamps.",
                             fix="re-mux it into MP4, e.g. `ffmpeg -i IN -c copy OUT.mp4`.")
        self.decoded += 1
        if frame.key_frame:
            self._last_key = frame.pts
        return frame

    def _seek(self, target_pts: int) -> None:
        try:
            self.opened.container.seek(target_pts, stream=self.opened.stream, backward=True)
        except av.error.FFmpegError:
            raise decode_errors(self.name) from None
        self.seeks += 1
        self._packets = None
        self._queue.clear()
        self._flushed = False
        self._current = None
        self._ahead = None
        self._last_key = None

    def _seek_before(self, target_pts: int) -> None:
        """Seek so that decoding starts at a keyframe at or before the target."""
        start = self.opened.start_pts
        back = 0
        while True:
            self._seek(max(start, target_pts - back))
            first = self._next_frame()
            if first is None or first.pts <= target_pts or target_pts - back <= start:
                break
            # The demuxer landed on a keyframe after the target (a defensive case: some containers index
            # keyframes loosely): go back further, doubling the distance each time.
            back = 2 * back if back else self._keyframe_gap
        if first is not None:
            self._ahead = first
            self._last_key = first.pts  # decoding restarts here, whatever the frame's flags say

    def _ends_early(self, last: Any) -> VideoError:
        if last is None:
            where = "no picture could be decoded"
        else:
            seconds = float((last.pts - self.opened.start_pts) * self.opened.time_base)
            where = f"its pictures stop at {format_timestamp(seconds)}"
        return VideoError(f"{self.name!r} ends early: {where}, but its header says it lasts "
                          f"{format_timestamp(self.opened.info.duration)}.",
                          fix="the file is damaged or cut short (an unfinished download or export): get it again.")

    def _should_seek(self, target_pts: int) -> bool:
        if self._current is not None and target_pts < self._current.pts:
            return True  # backwards
        if self._last_key is None:
            return True
        # Where a seek would land: the latest keyframe <= target, estimated from the last keyframe decoded
        # and the keyframe interval. Seek only if that skips a worthwhile stretch (an eighth of an interval)
        # past where the decoder already is; otherwise decoding on is as cheap and needs no jump.
        intervals = (target_pts - self._last_key) // self._keyframe_gap
        if intervals < 1:
            return False
        landing = self._last_key + intervals * self._keyframe_gap
        position = self._ahead if self._ahead is not None else self._current
        here = position.pts if position is not None else self._last_key
        return landing - here > self._keyframe_gap // 8

    def frame_at(self, target_pts: int) -> Any:
        """The decoded frame on screen at ``target_pts`` (stream time base)."""
        self._target = target_pts
        if self._should_seek(target_pts):
            self._seek_before(target_pts)
        while True:
            frame = self._next_frame()
            if frame is None:  # end of the video: the last frame stays on screen until the end
                last = self._current
                if last is None or target_pts >= last.pts + 2 * self._frame_pts:
                    raise self._ends_early(last)
                return last
            if frame.pts <= target_pts:
                self._current = frame
                if frame.pts == target_pts:
                    return frame
                continue
            self._ahead = frame
            if self._current is None:  # target before the first frame
                self._current = frame
                self._ahead = None
            return self._current

# ====================================================================================================
# video plan (formerly helpers/video_plan.py)
# ====================================================================================================

def default_model(model: str | None) -> str:
    """``model``, or the configured model when None (``VISION_MODEL`` as setup() resolved it, else the default)."""
    if model is not None:
        return model
    return models.configured_model()


def frame_size(info: VideoInfo, detail: str, model: str) -> tuple[tuple[int, int], int]:
    """The size a frame is sent at, and what it costs (helpers.tokens).

    >>> frame_size(VideoInfo(28.0, 24.0, 1280, 720, 672, "h264"), "low", "gpt-4o")
    ((512, 288), 85)
    """
    size = tokens.scaled_size(info.width, info.height, detail, model)
    return size, tokens.image_tokens(size[0], size[1], detail, model)


def _positive_number(name: str, value: object) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction) or not math.isfinite(value):
        raise VideoError(f"{name} must be a number of seconds, got {value!r}.",
                         fix=f"pass e.g. {name}=2 for a frame every 2 seconds.")
    if value <= 0:
        raise VideoError(f"{name} must be more than 0 seconds, got {value!r}.",
                         fix=f"pass e.g. {name}=2 for a frame every 2 seconds.")
    return Fraction(value).limit_denominator(1_000_000)


def whole_number(name: str, value: object, example: str) -> int:
    """``value`` if it is an int (not a bool), else a VideoError showing ``example``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise VideoError(f"{name} must be a whole number, got {value!r}.", fix=f"pass e.g. {example}.")
    return value


def centres(duration: Fraction, n: int) -> list[Fraction]:
    """Centres of n equal segments of [0, duration)."""
    return [duration * (2 * i + 1) / (2 * n) for i in range(n)]


def plan(info: VideoInfo, duration: Fraction, every_seconds: float | None, max_frames: int | None,
          max_tokens: int | None, detail: str, model: str) -> list[Fraction]:
    """The times (exact seconds) to fetch; the tightest of the three rules wins (see sample_frames)."""
    if every_seconds is None and max_frames is None and max_tokens is None:
        raise VideoError("Say how to sample the video.",
                         fix="pass every_seconds=2 (a frame every 2 s), max_frames=8 (8 frames spread evenly) "
                             "or max_tokens=5000 (as many frames as fit in 5000 image tokens).")
    caps: list[int] = []
    if max_frames is not None:
        max_frames = whole_number("max_frames", max_frames, "max_frames=8")
        if max_frames < 1:
            raise VideoError(f"max_frames must be at least 1, got {max_frames}.", fix="pass e.g. max_frames=8.")
        if max_frames > info.frame_count:
            raise VideoError(
                f"max_frames={max_frames} asks for more frames than the video has ({info.frame_count} frames, "
                f"{info.duration:g} s at {info.fps:g} fps).",
                fix=f"pass max_frames={info.frame_count} or fewer (a handful is usually enough).")
        caps.append(max_frames)
    if max_tokens is not None:
        max_tokens = whole_number("max_tokens", max_tokens, "max_tokens=5000")
        (w, h), per_frame = frame_size(info, detail, model)
        if max_tokens < per_frame:
            raise VideoError(
                f"A budget of max_tokens={max_tokens} is too small for one frame: at detail={detail!r} a "
                f"{w}x{h} frame costs {per_frame} tokens on {model}.",
                fix=f"raise max_tokens to at least {per_frame}, or use a cheaper detail or model.")
        caps.append(min(max_tokens // per_frame, info.frame_count))
    cap = min(caps) if caps else None

    if every_seconds is not None:
        step = _positive_number("every_seconds", every_seconds)
        frame_time = Fraction(1) / Fraction(info.fps).limit_denominator(1_000_000)
        if step < frame_time:
            raise VideoError(
                f"every_seconds={every_seconds} is more often than the video has frames "
                f"({info.fps:g} fps: one frame every {float(frame_time):.3f} s).",
                fix=f"pass every_seconds={float(frame_time):.3f} or more (for this video, 1 or 2 s is typical).")
        grid = [k * step for k in range(math.ceil(duration / step)) if k * step < duration]
        if cap is None or len(grid) <= cap:
            return grid
    assert cap is not None
    return centres(duration, cap)


def plan_timestamps(path: PathLike, *, every_seconds: float | None = None, max_frames: int | None = None,
                    max_tokens: int | None = None, detail: str = "low", model: str | None = None) -> list[float]:
    """The times (seconds) :func:`sample_frames` will look at for these arguments, without fetching frames.

    Each sampled frame is the one on screen at its planned time, so its timestamp is that time or up to one
    frame earlier (exactly that time when it falls on a frame, like 0, 2, 4 s at 24 fps).

    >>> plan_timestamps("images/sample_video.mp4", max_frames=4)             # doctest: +SKIP
    [3.5, 10.5, 17.5, 24.5]

    Taught in notebooks/08_video.ipynb.
    """
    opened = open_video(path)
    opened.container.close()
    model = default_model(model)
    return [float(t) for t in plan(opened.info, opened.duration, every_seconds, max_frames, max_tokens,
                                    detail, model)]

# ====================================================================================================
# video
# ====================================================================================================

# PIL turns counterclockwise, like FFmpeg's display rotation.
_UPRIGHT = {90: Image.Transpose.ROTATE_90, -90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180}


# --- data ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Frame:
    """One sampled frame: when it is shown, the RGB picture (already at the size the model sees), its cost.

    ``timestamp`` is in seconds from the start of the video; ``index`` is the frame number (0-based);
    ``tokens`` is what the image costs for ``model`` at ``detail`` (``helpers.tokens.image_tokens``).
    Text parts (the ``label`` and your prompt) cost extra tokens.

    >>> frame = sample_frames("images/sample_video.mp4", max_frames=1, model="gpt-4o")[0]   # doctest: +SKIP
    >>> frame.label, frame.image.size, frame.tokens                                          # doctest: +SKIP
    ('Frame at 00:14.0', (512, 288), 85)

    Taught in notebooks/08_video.ipynb.
    """

    timestamp: float
    image: Image.Image
    index: int
    detail: str
    model: str
    tokens: int

    @property
    def label(self) -> str:
        """The text sent before the image, e.g. ``"Frame at 00:03.0"``."""
        return f"Frame at {format_timestamp(self.timestamp)}"


class SampledFrames(list):
    """A list of :class:`Frame` plus how it was obtained: the video's :class:`VideoInfo`, the method,
    how many frames had to be decoded and how many seeks it took, and the image-token total.

    >>> frames = sample_frames("images/sample_video.mp4", max_frames=4, model="gpt-4o")   # doctest: +SKIP
    >>> len(frames), frames.decoded, frames.seeks                                         # doctest: +SKIP
    (4, 55, 4)

    Taught in notebooks/08_video.ipynb.
    """

    def __init__(self, frames: Sequence[Frame], *, info: VideoInfo, method: str, decoded: int,
                 seeks: int) -> None:
        super().__init__(frames)
        self.info = info
        self.method = method
        self.decoded = decoded
        self.seeks = seeks

    @property
    def timestamps(self) -> list[float]:
        """The frames' times in seconds."""
        return [f.timestamp for f in self]

    @property
    def tokens(self) -> int:
        """Image tokens of all frames together (text parts and the prompt are extra)."""
        return sum(f.tokens for f in self)

    def summary(self) -> str:
        """One deterministic line for a notebook.

        >>> sample_frames("images/sample_video.mp4", every_seconds=7, model="gpt-4o").summary()  # doctest: +SKIP
        '4 frames x 85 tokens = 340 image tokens (gpt-4o, detail=low); decoded 29 of 672 frames, 3 seeks'
        """
        if not self:
            return "0 frames"
        first = self[0]
        per = f"{first.tokens} tokens" if all(f.tokens == first.tokens for f in self) else "varying tokens"
        return (f"{len(self)} frames x {per} = {self.tokens} image tokens ({first.model}, detail={first.detail}); "
                f"decoded {self.decoded} of {self.info.frame_count} frames, {self.seeks} seeks")


# --- sampling -----------------------------------------------------------------------------------------

def _to_frame(av_frame: Any, opened: Opened, size: tuple[int, int], detail: str, model: str,
              tokens: int, index: int | None = None) -> Frame:
    seconds = (av_frame.pts - opened.start_pts) * opened.time_base
    if index is None:  # constant frame rate: frame number from the timestamp
        index = round(float(seconds) * opened.info.fps)
    # swscale resizes and converts to RGB in one step; AREA averages pixels when shrinking (no aliasing).
    # A rotated (phone) video is decoded sideways at the swapped size, then turned upright.
    rotation = opened.info.rotation
    coded = (size[1], size[0]) if rotation in (90, -90) else size
    image = av_frame.to_image(width=coded[0], height=coded[1], interpolation="AREA")
    if rotation:
        image = image.transpose(_UPRIGHT[rotation])
    return Frame(timestamp=float(seconds), image=image, index=index, detail=detail, model=model, tokens=tokens)


def sample_frames(path: PathLike, every_seconds: float | None = None, max_frames: int | None = None,
                  max_tokens: int | None = None, detail: str = "low", model: str | None = None) -> SampledFrames:
    """Sample frames of a video, with timestamps, resized for ``detail``/``model``, under a token budget.

    Choose the frames with one or more of:

    * ``every_seconds=s``: frames at 0, s, 2s, ... (before the end);
    * ``max_frames=n``: n frames spread evenly, one at the centre of each of n equal segments;
    * ``max_tokens=b``: as many frames as fit: n x (tokens per frame) <= b, the tokens per frame coming from
      ``helpers.tokens.image_tokens`` for the frame size, ``detail`` and ``model``. Only *image* tokens count:
      the "Frame at ..." text parts, your prompt and the answer are extra, so leave room for them.

    Combined, the tightest wins: ``max_frames`` and ``max_tokens`` cap the count; when the cap is smaller than
    what ``every_seconds`` would give, the capped number of frames is spread evenly over the *whole* video
    (wider spacing) rather than dropping its end. A frame is the one on screen at its time (the last frame
    whose timestamp is <= the time), so whole-frame times such as 0, 2, 4 s are returned exactly.

    Frames are fetched by seeking: for each time the reader jumps to the keyframe before it and decodes
    forward only from there, skipping the frames no other frame refers to (most B-frames) until the one
    on screen; when the next time lies before the next keyframe it simply decodes on. The work grows with
    the number of frames you ask for, not with the length of the video as in :func:`sample_frames_naive`.
    ``frames.decoded`` and ``frames.seeks`` say how much work it was.

    Each frame is an upright RGB PIL image (phone videos stored sideways are turned) of size
    ``helpers.tokens.scaled_size(width, height, detail, model)``: the size the model looks at, so the frame
    costs exactly ``Frame.tokens``. ``model=None`` means the configured model (``VISION_MODEL``, else the course default). (Patch-family
    models such as gpt-4.1-mini ignore ``detail`` in ``helpers.tokens``: their frames keep their full size
    unless they exceed the patch budget.)

    >>> frames = sample_frames("images/sample_video.mp4", every_seconds=7, detail="low", model="gpt-4o")  # doctest: +SKIP
    >>> [(f.label, f.image.size, f.tokens) for f in frames][:2]                                          # doctest: +SKIP
    [('Frame at 00:00.0', (512, 288), 85), ('Frame at 00:07.0', (512, 288), 85)]
    >>> sample_frames("images/sample_video.mp4", max_tokens=500, model="gpt-4o").timestamps               # doctest: +SKIP
    [2.7916666666666665, 8.375, 14.0, 19.583333333333332, 25.166666666666668]

    Raises :class:`~helpers.errors.ImageNotFoundError` (missing path) or :class:`~helpers.errors.VideoError`
    (not a video, empty file, more frames than the video has, ``every_seconds`` <= 0 or shorter than a frame,
    a budget too small for one frame), each saying what to do.

    Taught in notebooks/08_video.ipynb.
    """
    model = default_model(model)
    opened = open_video(path)
    try:
        targets = plan(opened.info, opened.duration, every_seconds, max_frames, max_tokens, detail, model)
        return _fetch(opened, Path(path).name, targets, detail, model)
    finally:
        opened.container.close()


def frames_at(path: PathLike, timestamps: Sequence[float], detail: str = "low",
              model: str | None = None) -> SampledFrames:
    """The frames on screen at the given times (seconds), in increasing time, fetched by seeking.

    Handy to look at one moment ("what happens at 00:12?") or at the middle of known scenes. Frames are
    resized and costed like :func:`sample_frames`.

    >>> [f.label for f in frames_at("images/sample_video.mp4", [2, 12.5], model="gpt-4o")]   # doctest: +SKIP
    ['Frame at 00:02.0', 'Frame at 00:12.5']

    Raises :class:`~helpers.errors.VideoError` for a time before 0 or at/after the end of the video.

    Taught in notebooks/08_video.ipynb.
    """
    model = default_model(model)
    opened = open_video(path)
    try:
        targets = []
        for t in timestamps:
            if isinstance(t, bool) or not isinstance(t, int | float | Fraction) or not math.isfinite(t):
                raise VideoError(f"Timestamps must be numbers of seconds, got {t!r}.", fix="pass e.g. [0, 2.5, 10].")
            exact = Fraction(t).limit_denominator(1_000_000)
            if not 0 <= exact < opened.duration:
                raise VideoError(f"{t} s is outside the video, which lasts {opened.info.duration:g} s.",
                                 fix=f"pass times from 0 up to (not including) {opened.info.duration:g}.")
            targets.append(exact)
        return _fetch(opened, Path(path).name, sorted(targets), detail, model)
    finally:
        opened.container.close()


def _fetch(opened: Opened, name: str, targets: Sequence[Fraction], detail: str, model: str) -> SampledFrames:
    size, tokens = frame_size(opened.info, detail, model)
    reader = SeekingReader(opened, name)
    frames = []
    for target in targets:
        target_pts = opened.start_pts + math.floor(target / opened.time_base)
        av_frame = reader.frame_at(target_pts)
        frames.append(_to_frame(av_frame, opened, size, detail, model, tokens))
    return SampledFrames(frames, info=opened.info, method="seek", decoded=reader.decoded, seeks=reader.seeks)


def sample_frames_naive(path: PathLike, every_n: int, *, offset: int = 0, detail: str = "low",
                        model: str | None = None) -> SampledFrames:
    """The slow way: decode *every* frame and keep frames ``offset``, ``offset + every_n``, ...

    This is the approach of most cookbooks (OpenCV ``read()`` in a loop, keep every Nth frame). It is
    correct and simple, but its cost grows with the length of the video, not with the number of frames you
    keep: a 60-second clip at 24 fps means 1440 decoded frames to keep 10. :func:`sample_frames` seeks
    instead. Kept frames are resized exactly like :func:`sample_frames` does, so results can be compared.

    >>> slow = sample_frames_naive("images/sample_video.mp4", every_n=48, model="gpt-4o")   # doctest: +SKIP
    >>> slow.timestamps[:3], slow.decoded                                   # doctest: +SKIP
    ([0.0, 2.0, 4.0], 672)

    Taught in notebooks/08_video.ipynb (the comparison; benchmarks/video_sampling.py times it).
    """
    every_n = whole_number("every_n", every_n, "every_n=48 (one frame in 48)")
    offset = whole_number("offset", offset, "offset=0")
    if every_n < 1:
        raise VideoError(f"every_n must be at least 1, got {every_n}.", fix="pass e.g. every_n=48 (one frame in 48).")
    if offset < 0:
        raise VideoError(f"offset must be 0 or more, got {offset}.", fix="pass offset=0 to start at the first frame.")
    model = default_model(model)
    opened = open_video(path)
    name = Path(path).name
    try:
        size, tokens = frame_size(opened.info, detail, model)
        frames: list[Frame] = []
        decoded = 0
        try:
            for decoded, av_frame in enumerate(opened.container.decode(opened.stream), start=1):
                i = decoded - 1
                if i >= offset and (i - offset) % every_n == 0:
                    frames.append(_to_frame(av_frame, opened, size, detail, model, tokens, index=i))
        except av.error.FFmpegError:
            raise decode_errors(name) from None
        return SampledFrames(frames, info=opened.info, method="decode every frame", decoded=decoded, seeks=0)
    finally:
        opened.container.close()


# --- sending --------------------------------------------------------------------------------------------

def frames_to_parts(frames: Sequence[Frame], detail: str | None = None, model: str | None = None, *,
                    jpeg_quality: int = 90) -> list[dict]:
    """Chat Completions content parts: ``"Frame at MM:SS.s"`` text, then the image, for each frame.

    ``detail=None`` uses each frame's own detail (the one it was sampled for). Each frame is sent as a JPEG
    (``jpeg_quality``, default 90) through ``helpers.images.image_part``: video frames are already lossy, and
    a PNG of the same frame is about five times larger to upload for no visible gain. Put your question in a
    text part before or after these parts; text parts cost tokens on top of ``frames.tokens``.

    >>> parts = frames_to_parts(sample_frames("images/sample_video.mp4", max_frames=2, model="gpt-4o"))  # doctest: +SKIP
    >>> [p["type"] for p in parts], parts[0]                                              # doctest: +SKIP
    (['text', 'image_url', 'text', 'image_url'], {'type': 'text', 'text': 'Frame at 00:07.0'})

    Taught in notebooks/08_video.ipynb.
    """
    parts: list[dict] = []
    for frame in frames:
        buffer = io.BytesIO()
        frame.image.convert("RGB").save(buffer, format="JPEG", quality=jpeg_quality)
        parts.append({"type": "text", "text": frame.label})
        parts.append(image_part(buffer.getvalue(), detail=detail or frame.detail, model=model or frame.model))
    return parts
