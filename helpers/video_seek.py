"""Fetching the frame on screen at a given time by *seeking*: jump to the keyframe before it, decode from there.

Part of the video helpers, on :mod:`helpers.video_probe`. Decoding only from the keyframe before each moment,
and skipping the frames no other frame refers to (most B-frames) until the one on screen, makes the work grow
with the number of frames asked for, not with the length of the video (``benchmarks/video_sampling.py``).

Taught in notebooks/08_video.ipynb.

>>> from helpers.video_probe import open_video
>>> opened = open_video("images/sample_video.mp4")                                   # doctest: +SKIP
>>> reader = SeekingReader(opened, "sample_video.mp4")                                # doctest: +SKIP
>>> reader.frame_at(opened.start_pts).pts, reader.decoded, reader.seeks               # doctest: +SKIP
(0, 1, 1)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av.error

from helpers.errors import VideoError
from helpers.video_probe import Opened, decode_errors, format_timestamp

__all__ = ["SeekingReader"]

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
