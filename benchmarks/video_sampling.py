"""Benchmark: take 10 frames from a 60-second 720p video by seeking vs by decoding every frame.

    python benchmarks/video_sampling.py            # from the repository root
    python benchmarks/video_sampling.py --keep     # keep the generated test video (its path is printed)

What it does:

1. Generates a realistic test video in a temporary folder (never in the repository): 60 s, 1280x720,
   24 fps, H.264 (libx264, else mpeg4), yuv420p, a keyframe every 2 s (GOP 48), with moving content and
   camera-like grain, so decoding costs what it costs on real footage. Deterministic (seeded).
2. Times, in the same run, interleaved, best of 3:
   * ``helpers.video.sample_frames(path, max_frames=10)``: seek to the keyframe before each of 10 evenly
     spaced times and decode forward from there (skipping the B-frames no other frame refers to, which
     nobody will look at: "decoded" counts the frames the decoder actually produced);
   * ``helpers.video.sample_frames_naive(path, every_n=144, offset=72)``: decode all 1440 frames and keep
     frames 72, 216, ..., i.e. the same 10 frames (the cookbook way).
3. Checks that both return frames at the same timestamps with (nearly) the same pixels, prints a table and
   the speed-up, and exits with status 1 if the speed-up is below ``--min-speedup`` (default 5).

Timings vary from machine to machine (and with its load); the frame counts do not. Why seeking wins: its
work depends on how many frames you want and on the keyframe interval, not on the length of the video.
Generating the test video takes about a minute on two cores; the timings themselves take seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from helpers.video import sample_frames, sample_frames_naive, video_info  # noqa: E402

WIDTH, HEIGHT, FPS, SECONDS, GOP = 1280, 720, 24, 60, 48
N_FRAMES = 10
MODEL = "gpt-4o"  # a tile-family model: detail="low" frames are 512x288, so resizing is cheap for both
DETAIL = "low"


def make_test_video(path: Path, seconds: int = SECONDS, seed: int = 0) -> None:
    """Write a 720p H.264 test video with motion and grain (deterministic for a given seed).

    A fixed 2-second keyframe interval (scene-cut keyframes off), as cameras and streaming encoders use.
    """
    rng = np.random.default_rng(seed)
    # Eight grain fields, reused with shifts: fresh-looking grain on every frame without making 1440 of them.
    grain = rng.normal(0.0, 4.0, size=(8, HEIGHT, WIDTH, 1)).astype(np.float32)
    x = np.arange(WIDTH, dtype=np.float32)
    y = np.arange(HEIGHT, dtype=np.float32)[:, None]
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    options = {"crf": "23", "preset": "veryfast", "sc_threshold": "0"} if codec == "libx264" else {"qscale": "4"}
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = GOP
        frame = np.empty((HEIGHT, WIDTH, 3), dtype=np.float32)
        for i in range(seconds * FPS):
            t = i / FPS
            # Drifting colour waves (the "scene"), changing character every 10 s...
            phase = t * 0.8 + (i // (10 * FPS)) * 1.7
            frame[:, :, 0] = 128 + 90 * np.sin(x / 97.0 + phase)
            frame[:, :, 1] = 128 + 90 * np.sin(y / 61.0 - phase * 1.3)
            frame[:, :, 2] = 128 + 45 * (np.sin(x / 143.0 + phase * 0.7) + np.cos(y / 89.0 - phase))
            # ...a bright square crossing the picture (motion the encoder has to track)...
            x0 = int((t * 180) % (WIDTH - 200))
            y0 = int(HEIGHT / 2 - 100 + 150 * np.sin(t))
            frame[y0:y0 + 200, x0:x0 + 200] = (250, 240, 60)
            # ...and camera-like grain.
            frame += np.roll(grain[i % 8], shift=(i * 37) % HEIGHT, axis=0)
            rgb = np.clip(frame, 0, 255).astype(np.uint8)
            video_frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            video_frame.pts, video_frame.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(video_frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def keyframe_times(path: Path) -> list[float]:
    """Keyframe timestamps (seconds), read from packets: nothing is decoded."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(float(p.pts * stream.time_base) for p in container.demux(stream)
                      if p.is_keyframe and p.pts is not None)


def run(path: Path, repeats: int = 3) -> dict:
    info = video_info(path)
    every_n = info.frame_count // N_FRAMES  # 144: one frame per 6-second segment...
    offset = every_n // 2  # ...at its centre, the frames max_frames=10 picks
    best = {"seek": float("inf"), "naive": float("inf")}
    results = {}
    for _ in range(repeats):  # interleaved, so both see the same machine load
        start = time.perf_counter()
        results["seek"] = sample_frames(path, max_frames=N_FRAMES, detail=DETAIL, model=MODEL)
        best["seek"] = min(best["seek"], time.perf_counter() - start)
        start = time.perf_counter()
        results["naive"] = sample_frames_naive(path, every_n, offset=offset, detail=DETAIL, model=MODEL)
        best["naive"] = min(best["naive"], time.perf_counter() - start)
    return {"info": info, "best": best, "results": results, "every_n": every_n, "offset": offset}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the generated video and print its path")
    parser.add_argument("--min-speedup", type=float, default=5.0, help="fail below this speed-up (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="best of how many runs (default 3)")
    args = parser.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="video-bench-") if args.keep else None
    with tempfile.TemporaryDirectory(prefix="video-bench-") as auto_tmp:
        folder = Path(tmp or auto_tmp)
        path = folder / "bench_720p_60s.mp4"
        start = time.perf_counter()
        make_test_video(path)
        made_in = time.perf_counter() - start
        keys = keyframe_times(path)
        gaps = np.diff(keys)
        out = run(path, args.repeats)
        info, best, res = out["info"], out["best"], out["results"]

        print(f"test video: {info.duration:.1f} s, {info.width}x{info.height}, {info.fps:g} fps, {info.codec}, "
              f"{info.frame_count} frames, {path.stat().st_size / 1e6:.1f} MB, {len(keys)} keyframes "
              f"(every {np.median(gaps):.2f} s), generated in {made_in:.1f} s")
        print(f"task: {N_FRAMES} frames, detail={DETAIL!r}, model={MODEL!r}; best of {args.repeats}, same run\n")
        rows = [
            ("seek (sample_frames, max_frames=10)", res["seek"], best["seek"]),
            (f"decode all (sample_frames_naive, every_n={out['every_n']}, offset={out['offset']})",
             res["naive"], best["naive"]),
        ]
        print(f"{'method':<60} {'frames':>6} {'decoded':>8} {'seeks':>6} {'seconds':>8}")
        for label, frames, seconds in rows:
            print(f"{label:<60} {len(frames):>6} {frames.decoded:>8} {frames.seeks:>6} {seconds:>8.3f}")
        speedup = best["naive"] / best["seek"]
        print(f"\nspeed-up: {speedup:.1f}x (decoded {res['naive'].decoded / res['seek'].decoded:.1f}x fewer frames)")

        seek_t, naive_t = res["seek"].timestamps, res["naive"].timestamps
        same_count = len(seek_t) == len(naive_t)
        dt = max(abs(a - b) for a, b in zip(seek_t, naive_t, strict=True)) if same_count else float("inf")
        dpx = max(float(np.abs(np.asarray(a.image, dtype=np.int16) - np.asarray(b.image, dtype=np.int16)).mean())
                  for a, b in zip(res["seek"], res["naive"], strict=True))
        print(f"timestamps: {', '.join(f'{t:g}' for t in seek_t)} s")
        print(f"same frames: max timestamp difference {dt:.3f} s, max mean pixel difference {dpx:.2f} (0-255)")
        if args.keep:
            print(f"kept: {path}")
        ok = same_count and dt <= 1 / info.fps and dpx < 2.0
        if not ok:
            print("FAIL: the two methods returned different frames")
            return 1
        if speedup < args.min_speedup:
            print(f"FAIL: speed-up below the {args.min_speedup:g}x target")
            return 1
        print(f"OK: same frames, speed-up at least {args.min_speedup:g}x")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
