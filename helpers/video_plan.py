"""Planning which moments of a video to send: every N seconds, N frames spread evenly, or a token budget.

Part of the video helpers, on :mod:`helpers.video_probe` and :mod:`helpers.tokens` (a frame is sent at the size
the model looks at, so it costs exactly ``tokens.image_tokens``). :func:`plan_timestamps` shows the plan of
:func:`helpers.video.sample_frames` without fetching a frame.

Taught in notebooks/08_video.ipynb.

>>> from fractions import Fraction
>>> centres(Fraction(28), 4)
[Fraction(7, 2), Fraction(21, 2), Fraction(35, 2), Fraction(49, 2)]
"""

from __future__ import annotations

import math
from fractions import Fraction

from helpers import models, tokens
from helpers.errors import VideoError
from helpers.video_probe import PathLike, VideoInfo, open_video

__all__ = ["centres", "default_model", "frame_size", "plan", "plan_timestamps", "whole_number"]


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


