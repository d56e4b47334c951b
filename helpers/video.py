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


The steps live in layers: :mod:`helpers.video_probe` (opening, :func:`video_info`), :mod:`helpers.video_plan`
(:func:`plan_timestamps`), :mod:`helpers.video_seek` (the seeking reader); this module samples and packages,
and re-exports the names notebooks import from ``helpers.video``.

:func:`sample_frames_naive` is the usual cookbook approach (decode every frame, keep every Nth), kept for
comparison: it is much slower on long videos (``benchmarks/video_sampling.py`` measures both).

>>> from helpers.video import sample_frames, frames_to_parts
>>> frames = sample_frames("images/sample_video.mp4", max_frames=6, detail="low", model="gpt-4o")  # doctest: +SKIP
>>> [f.label for f in frames][:2], frames.tokens                                                   # doctest: +SKIP
(['Frame at 00:02.3', 'Frame at 00:07.0'], 510)

Decoding uses PyAV (``av``), whose wheel ships its own FFmpeg. FFmpeg errors never escape: they become
:class:`~helpers.errors.VideoError` with what to do next.

Taught in notebooks/08_video.ipynb.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av.error
from PIL import Image

from helpers.errors import VideoError
from helpers.images import image_part
from helpers.video_plan import default_model, frame_size, plan, plan_timestamps, whole_number
from helpers.video_probe import (
    Opened,
    PathLike,
    VideoInfo,
    decode_errors,
    format_timestamp,
    open_video,
    video_info,
)
from helpers.video_seek import SeekingReader

__all__ = [
    "Frame",
    "SampledFrames",
    "VideoInfo",
    "format_timestamp",
    "frames_at",
    "frames_to_parts",
    "plan_timestamps",
    "sample_frames",
    "sample_frames_naive",
    "video_info",
]

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
