"""helpers.video on the committed sample video (images/sample_video.mp4 + sample_video.json).

The video is made by scripts/make_video.py: 28 s, 1280x720, 24 fps, H.264, six scenes with hard cuts at
whole seconds, a keyframe every 2 s. The JSON lists the scenes with the mean RGB colour of each centre frame.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from helpers import tokens
from helpers.errors import ImageNotFoundError, VideoError
from helpers.video import (
    Frame,
    format_timestamp,
    frames_at,
    frames_to_parts,
    plan_timestamps,
    sample_frames,
    sample_frames_naive,
    video_info,
)

IMAGES = Path(__file__).resolve().parent.parent / "images"
VIDEO = IMAGES / "sample_video.mp4"
SCENES = json.loads((IMAGES / "sample_video.json").read_text(encoding="utf-8"))
MODEL = "gpt-4o"  # a tile-family model: detail="low" frames are small (512x288), so tests stay fast


def pixels(frame: Frame) -> np.ndarray:
    return np.asarray(frame.image, dtype=np.int16)


@pytest.fixture(scope="module")
def naive_odd_seconds():
    """Decode all 672 frames the slow way and keep those at 1, 3, 5, ... s (the middle of each keyframe gap)."""
    return sample_frames_naive(VIDEO, every_n=48, offset=24, detail="low", model=MODEL)


# --- the sample video and its scene list ------------------------------------------------------------------

def test_sample_video_file_is_small_and_scenes_cover_it():
    assert VIDEO.stat().st_size < 5 * 1024 * 1024
    info = video_info(VIDEO)
    assert 10 <= info.duration <= 30
    assert SCENES[0]["start"] == 0 and SCENES[-1]["end"] == info.duration
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(SCENES)), "scenes are contiguous"
    assert len({s["scene"] for s in SCENES}) == len(SCENES) >= 4


def test_video_info_reads_the_headers():
    info = video_info(str(VIDEO))
    assert (info.width, info.height) == (1280, 720)
    assert info.fps == 24.0
    assert info.duration == 28.0
    assert info.frame_count == 672 == round(info.duration * info.fps)
    assert info.codec == "h264"
    assert info.rotation == 0


def test_a_phone_video_stored_sideways_is_sampled_upright(tmp_path):
    # Phones film upright but store landscape pictures plus "rotate 90 degrees clockwise" (-90) to display.
    path = tmp_path / "phone.mp4"
    stored = np.zeros((240, 320, 3), dtype=np.uint8)
    stored[:120, :160] = (255, 0, 0)  # red in the stored picture's top-left corner
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.set_display_rotation(-90)
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    info = video_info(path)
    assert (info.width, info.height, info.rotation) == (240, 320, -90)
    frame = sample_frames(path, max_frames=1, detail="high", model=MODEL)[0]
    upright = np.asarray(frame.image)
    assert upright.shape == (320, 240, 3)
    # Turned 90 degrees clockwise, the red corner is now top-right.
    assert upright[10, -10, 0] > 200 and upright[10, -10, 1] < 50
    assert upright[10, 10].max() < 50 and upright[-10, -10].max() < 50


# --- choosing frames -----------------------------------------------------------------------------------------

def test_every_two_seconds_gives_0_2_4_and_the_exact_frames():
    frames = sample_frames(VIDEO, every_seconds=2, detail="low", model=MODEL)
    assert frames.timestamps == [float(t) for t in range(0, 28, 2)]
    assert [f.index for f in frames] == list(range(0, 672, 48))
    assert [f.label for f in frames[:3]] == ["Frame at 00:00.0", "Frame at 00:02.0", "Frame at 00:04.0"]


def test_max_frames_spreads_frames_over_the_whole_video():
    frames = sample_frames(VIDEO, max_frames=5, detail="low", model=MODEL)
    times = frames.timestamps
    assert len(frames) == 5
    assert all(a < b for a, b in itertools.pairwise(times))
    assert times[0] >= 0 and times[-1] < 28.0
    # One frame per 5.6-second segment, on screen at its centre (2.8, 8.4, 14.0, 19.6, 25.2 s).
    for i, t in enumerate(times):
        centre = 28.0 * (2 * i + 1) / 10
        assert centre - 1 / 24 < t <= centre


def test_seeking_decodes_a_small_part_of_the_video():
    frames = sample_frames(VIDEO, max_frames=3, detail="low", model=MODEL)
    assert frames.method == "seek" and frames.seeks >= 1
    assert frames.decoded < frames.info.frame_count / 4


@pytest.mark.parametrize(("detail", "model"), [("low", "gpt-4o"), ("high", "gpt-4o"), ("low", None)])
def test_frames_have_the_size_the_model_sees_and_its_token_cost(detail, model):
    frames = sample_frames(VIDEO, max_frames=2, detail=detail, model=model)
    from helpers.models import DEFAULT_MODEL

    expected_model = model or DEFAULT_MODEL
    size = tokens.scaled_size(1280, 720, detail, expected_model)
    for frame in frames:
        assert frame.image.size == size
        assert frame.image.mode == "RGB"
        assert frame.model == expected_model and frame.detail == detail
        assert frame.tokens == tokens.image_tokens(*size, detail, expected_model)
        # Sending it at that size costs exactly what the original frame would.
        assert frame.tokens == tokens.image_tokens(1280, 720, detail, expected_model)
    assert frames.tokens == sum(f.tokens for f in frames)


@pytest.mark.parametrize(("model", "detail", "budget"), [
    ("gpt-4o", "low", 500),      # 85 per frame -> 5 frames (425), a 6th would be 510
    ("gpt-4o", "low", 510),      # exactly 6 frames
    ("gpt-4o", "high", 2000),    # 1280x720 at high detail is 765 tokens -> 2 frames
])
def test_token_budget_takes_as_many_frames_as_fit(model, detail, budget):
    per_frame = tokens.image_tokens(1280, 720, detail, model)
    frames = sample_frames(VIDEO, max_tokens=budget, detail=detail, model=model)
    n = len(frames)
    assert n >= 1
    assert n * per_frame <= budget < (n + 1) * per_frame
    assert frames.tokens == n * per_frame
    # Evenly spaced: each frame is the one on screen at a planned time (at most one frame earlier).
    planned = plan_timestamps(VIDEO, max_tokens=budget, detail=detail, model=model)
    assert len(planned) == n
    assert all(t - 1 / 24 < f.timestamp <= t for f, t in zip(frames, planned, strict=True))


def test_the_tightest_constraint_wins():
    # every_seconds=1 alone would give 28 frames; max_frames=4 caps it, spread over the whole video.
    capped = sample_frames(VIDEO, every_seconds=1, max_frames=4, detail="low", model=MODEL)
    assert capped.timestamps == [3.5, 10.5, 17.5, 24.5]
    # A budget for 5 frames caps every_seconds=2 (14 frames) too...
    by_budget = plan_timestamps(VIDEO, every_seconds=2, max_tokens=5 * 85, detail="low", model=MODEL)
    assert len(by_budget) == 5
    # ...while a looser cap leaves the every-2-seconds grid alone.
    assert plan_timestamps(VIDEO, every_seconds=2, max_frames=20, model=MODEL) == [float(t) for t in range(0, 28, 2)]


# --- the right pictures ----------------------------------------------------------------------------------------

def test_scene_centre_frames_match_their_scene_and_differ_from_each_other():
    centres = [(s["start"] + s["end"]) / 2 for s in SCENES]
    frames = frames_at(VIDEO, centres, detail="low", model=MODEL)
    assert frames.timestamps == centres
    means = np.array([pixels(f).reshape(-1, 3).mean(axis=0) for f in frames])
    recorded = np.array([s["centre_mean_rgb"] for s in SCENES])
    for i, scene in enumerate(SCENES):
        distances = np.abs(recorded - means[i]).max(axis=1)
        assert distances.argmin() == i, f"{scene['scene']}: closest recorded scene is {SCENES[distances.argmin()]['scene']}"
        assert distances[i] < 4, f"{scene['scene']}: mean colour {means[i]} vs recorded {recorded[i]}"
    # Every pair of scenes looks different (mean absolute pixel difference of whole frames; two frames of
    # one scene differ by about 1)...
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            assert np.abs(pixels(frames[i]) - pixels(frames[j])).mean() > 10, (SCENES[i]["scene"], SCENES[j]["scene"])
    # ...and the handwriting is written out line by line: more ink at the end of the scene than at its centre.
    notes = SCENES[-1]
    centre, end = frames_at(VIDEO, [(notes["start"] + notes["end"]) / 2, notes["end"] - 0.1], model=MODEL)
    assert (pixels(end).sum(axis=2) < 300).sum() > 1.5 * (pixels(centre).sum(axis=2) < 300).sum()


def test_a_cut_changes_the_picture_between_the_last_and_first_frame_of_two_scenes():
    cut = SCENES[1]["start"]  # astronaut -> cat at 4 s
    before, after = frames_at(VIDEO, [cut - 1 / 24, cut], detail="low", model=MODEL)
    assert (before.index, after.index) == (cut * 24 - 1, cut * 24)
    assert np.abs(pixels(before) - pixels(after)).mean() > 20


def test_seeking_gives_the_same_frames_as_decoding_everything(naive_odd_seconds):
    assert naive_odd_seconds.decoded == 672 and naive_odd_seconds.seeks == 0
    assert naive_odd_seconds.timestamps == [float(t) for t in range(1, 28, 2)]
    by_seeking = sample_frames(VIDEO, max_frames=14, detail="low", model=MODEL)  # centres: 1, 3, 5, ... s
    assert by_seeking.seeks >= 10  # one per keyframe interval (the first is reached by decoding on)
    # Times closer than the keyframe interval: the reader decodes on instead of seeking back.
    decoding_on = frames_at(VIDEO, [0.5, 1, 1.5, 3, 3.5, 5], detail="low", model=MODEL)
    assert decoding_on.seeks < 3
    pairs = [*zip(by_seeking, naive_odd_seconds, strict=True),
             *zip(decoding_on[1::2], naive_odd_seconds[:3], strict=True)]
    for a, b in pairs:
        assert (a.timestamp, a.index) == (b.timestamp, b.index)
        assert np.abs(pixels(a) - pixels(b)).mean() < 1.0


def test_frames_at_returns_the_frame_on_screen():
    # 2.03 s lies between the frames at 2.0 and 2.0417 s: the frame at 2.0 s is still on screen.
    frames = frames_at(VIDEO, [12.5, 2.03, 27.99], detail="low", model=MODEL)
    assert [f.index for f in frames] == [48, 300, 671]
    assert frames.timestamps == [2.0, 12.5, 671 / 24]


# --- sending -------------------------------------------------------------------------------------------

def test_frames_to_parts_puts_a_timestamp_before_each_image():
    frames = sample_frames(VIDEO, every_seconds=7, detail="low", model=MODEL)
    parts = frames_to_parts(frames)
    assert [p["type"] for p in parts] == ["text", "image_url"] * 4
    assert [p["text"] for p in parts[::2]] == ["Frame at 00:00.0", "Frame at 00:07.0", "Frame at 00:14.0",
                                                "Frame at 00:21.0"]
    for frame, part in zip(frames, parts[1::2], strict=True):
        assert part["image_url"]["detail"] == "low"
        url = part["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as sent:
            assert sent.size == frame.image.size
            # A JPEG of the frame: the picture survives (mean difference of a few levels at most).
            assert np.abs(np.asarray(sent.convert("RGB"), dtype=np.int16) - pixels(frame)).mean() < 4
    assert frames_to_parts(frames, detail="high")[1]["image_url"]["detail"] == "high"


@pytest.mark.parametrize(("seconds", "text"), [(0, "00:00.0"), (3, "00:03.0"), (61.26, "01:01.3"),
                                                (59.96, "01:00.0"), (3725.25, "1:02:05.2")])
def test_format_timestamp(seconds, text):
    assert format_timestamp(seconds) == text


# --- bad input: clear course errors, never a raw FFmpeg error -----------------------------------------------------

def assert_helpful(err: pytest.ExceptionInfo, *words: str) -> None:
    message = str(err.value)
    assert "What to do:" in message
    assert not isinstance(err.value, av.error.FFmpegError)
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in: {message}"


def test_missing_file(tmp_path):
    with pytest.raises(ImageNotFoundError) as err:
        sample_frames(tmp_path / "nope.mp4", max_frames=3)
    assert isinstance(err.value, FileNotFoundError)
    assert_helpful(err, "nope.mp4", "images/sample_video.mp4")


def test_a_folder_is_not_a_video(tmp_path):
    with pytest.raises(ImageNotFoundError) as err:
        video_info(tmp_path)
    assert_helpful(err, "folder")


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError) as err:
        sample_frames(empty, max_frames=3)
    assert_helpful(err, "empty.mp4", "empty")


def test_text_file(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("This is not a video.\n" * 20, encoding="utf-8")
    with pytest.raises(VideoError) as err:
        video_info(text)
    assert_helpful(err, "notes.mp4", "not a video")


def test_png_is_a_still_image_not_a_video(tmp_path):
    png = tmp_path / "still.png"
    Image.new("RGB", (64, 48), "teal").save(png)
    with pytest.raises(VideoError) as err:
        sample_frames(png, max_frames=1)
    assert_helpful(err, "still.png", "still image", "image_part")


def test_cut_short_video(tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(VIDEO.read_bytes()[:400_000])  # the header says 28 s, the pictures stop early
    with pytest.raises(VideoError) as err:
        sample_frames(cut, every_seconds=4)
    assert_helpful(err, "cut.mp4", "cut short")


def test_audio_only_file(tmp_path):
    audio = tmp_path / "tone.m4a"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("aac", rate=22050)
        samples = (0.1 * np.sin(np.arange(22050) * 2 * math.pi * 440 / 22050)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 22050, 0, Fraction(1, 22050)
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    with pytest.raises(VideoError) as err:
        video_info(audio)
    assert_helpful(err, "no video stream")


def test_more_frames_than_the_video_has():
    with pytest.raises(VideoError) as err:
        sample_frames(VIDEO, max_frames=1000)
    assert_helpful(err, "max_frames=1000", "672")


@pytest.mark.parametrize("every", [0, -2])
def test_every_seconds_must_be_positive(every):
    with pytest.raises(VideoError) as err:
        sample_frames(VIDEO, every_seconds=every)
    assert_helpful(err, "every_seconds", "more than 0")


def test_every_seconds_shorter_than_a_frame():
    with pytest.raises(VideoError) as err:
        sample_frames(VIDEO, every_seconds=0.01)
    assert_helpful(err, "24 fps", "0.042")


def test_budget_too_small_for_one_frame():
    with pytest.raises(VideoError) as err:
        sample_frames(VIDEO, max_tokens=50, detail="low", model="gpt-4o")
    assert_helpful(err, "max_tokens=50", "85 tokens", "at least 85")


def test_no_sampling_rule_given():
    with pytest.raises(VideoError) as err:
        sample_frames(VIDEO)
    assert_helpful(err, "every_seconds", "max_frames", "max_tokens")


def test_time_outside_the_video():
    with pytest.raises(VideoError) as err:
        frames_at(VIDEO, [5, 28])
    assert_helpful(err, "28 s", "outside")


def test_naive_rejects_a_zero_step():
    with pytest.raises(VideoError) as err:
        sample_frames_naive(VIDEO, every_n=0)
    assert_helpful(err, "every_n")
