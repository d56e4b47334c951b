"""Make the course's sample video, ``images/sample_video.mp4``, its scene list ``images/sample_video.json`` and its
transcript ``images/sample_video.vtt``.

Run from the repository root (a maintainer's tool, not needed to follow the course: both files are committed)::

    python scripts/make_video.py

The video is 28 seconds of 1280x720 at 24 fps, H.264 (libx264, yuv420p, BT.709, a keyframe every 2 s),
with six scenes separated by hard cuts at whole seconds (``SCENES`` below):

====  =====  ==================  ====================================================================
from  to     scene               what is on screen
====  =====  ==================  ====================================================================
0     4      astronaut photo     Eileen Collins (NASA, public domain), slow zoom, caption
4     8      cat photo           Chelsea the cat (Stefan van der Walt, CC0), slow zoom, caption
8     12     coffee photo        a cup of coffee (Rachel Michetti, CC0), slow zoom, caption
12    16     rocket photo        Falcon 9 launch (SpaceX, public domain), slow zoom, caption
16    22     growing chart       a matplotlib line chart of synthetic data that grows week by week
22    28     handwritten notes   handwriting-style text on ruled paper, written out line by line
====  =====  ==================  ====================================================================

Motion, so that frames sampled at different times differ in ways a model must track:

- a yellow ball rolls across each photo scene, from the left edge to the right edge in four seconds
  (its centre x at time t is in the JSON, ``ball``), so "which way does the ball move?" needs two frames;
- a frame counter in the top-right corner of every frame ("frame 0125"), so anyone can check which frame a
  sampler really took (frame = round(t x 24));
- the chart draws itself and the notes are written out line by line.

The clip has no sound track. ``sample_video.vtt`` is a WebVTT transcript written alongside (``NARRATION`` below):
what a narrator would say in each scene, the text a speech-to-text step would give for a clip with sound.

The four photos come from scikit-image's bundled sample data (``skimage.data``; licences quoted from its
docstrings, checked 2025-11-21). scikit-image is needed only here, not by ``helpers``.

Deterministic: no randomness, no clock, no file names or dates in the output; with the same PyAV/FFmpeg,
Pillow, matplotlib and font, two runs write byte-identical files (``--check`` verifies this).
The handwriting font is Breip (SIL OFL 1.0, Debian package ``fonts-breip``) when installed, otherwise
matplotlib's own DejaVu Sans Oblique; the JSON records which one was used.

Besides start/end/scene, the JSON records for each scene the text visible at its end and the mean RGB
colour of the frame at its centre, so tests and notebooks can check that a sampled frame comes from the
right scene.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1280, 720
FPS = 24
GOP = 2 * FPS  # a keyframe every 2 seconds (x264 may add more at the hard cuts)
DURATION = 28
REPO = Path(__file__).resolve().parents[1]
OUT_VIDEO = REPO / "images" / "sample_video.mp4"
OUT_JSON = REPO / "images" / "sample_video.json"

# Fonts: a handwriting font if the system has one (Debian: fonts-breip, SIL OFL 1.0), else matplotlib's own.
HANDWRITING_FONTS = ("/usr/share/fonts/truetype/breip/Breip.ttf",)
NOTES = (
    "Notes on video for vision models",
    "1. A video is a stack of images.",
    "2. Sample a few frames, not all.",
    "3. Every frame costs image tokens.",
    "4. Tell the model each timestamp.",
)


@dataclass(frozen=True)
class Scene:
    start: int  # seconds, inclusive
    end: int  # seconds, exclusive
    scene: str
    description: str


SCENES: tuple[Scene, ...] = (
    Scene(0, 4, "astronaut photo", "Photo of astronaut Eileen Collins with a caption; slow zoom."),
    Scene(4, 8, "cat photo", "Photo of Chelsea the cat with a caption; slow zoom."),
    Scene(8, 12, "coffee photo", "Photo of a cup of coffee on a saucer with a caption; slow zoom."),
    Scene(12, 16, "rocket photo", "Photo of a Falcon 9 rocket launch with a caption; slow zoom."),
    Scene(16, 22, "growing chart", "A line chart of synthetic weekly data that grows from left to right."),
    Scene(22, 28, "handwritten notes", "Handwriting-style notes on ruled paper, written out line by line."),
)

# Photos: (skimage.data function, caption, zoom focus as a fraction of the photo's width/height).
# Licences quoted from the skimage.data docstrings (scikit-image 0.26), checked 2025-11-21.
PHOTOS = {
    "astronaut photo": ("astronaut", "Astronaut Eileen Collins. Photo: NASA, public domain", (0.45, 0.35)),
    "cat photo": ("chelsea", "Chelsea the cat. Photo: Stefan van der Walt, CC0", (0.45, 0.45)),
    "coffee photo": ("coffee", "A cup of coffee. Photo: Rachel Michetti, CC0", (0.5, 0.5)),
    "rocket photo": ("rocket", "Falcon 9 launch. Photo: SpaceX, public domain", (0.5, 0.45)),
}
CHART_TITLE = "A chart that grows: weekly values (synthetic demo data)"


# What a narrator says, one cue per scene (the transcript in sample_video.vtt; the clip itself is silent).
NARRATION = {
    "astronaut photo": "First, a portrait of astronaut Eileen Collins. Watch the yellow ball roll across the picture.",
    "cat photo": "Next, Chelsea the cat. The ball rolls past again, left to right.",
    "coffee photo": "A cup of coffee on a saucer, and the ball once more.",
    "rocket photo": "A Falcon 9 rocket lifts off while the ball crosses for the last time.",
    "growing chart": "Now a chart draws itself week by week: visits in blue, sign-ups in red.",
    "handwritten notes": "Finally, handwritten notes: a video is a stack of images, so sample a few frames.",
}
BALL_RADIUS, BALL_Y = 30, 560  # the ball rolls along y = 560 px, over the lower part of the photo
BALL_FROM_X, BALL_TO_X = 60, WIDTH - 60


def ball_x(t: float, scene: Scene) -> int:
    """The ball's centre x (px) at time ``t`` in a photo scene: left edge to right edge over the scene."""
    progress = (t - scene.start) / (scene.end - scene.start)
    return round(BALL_FROM_X + (BALL_TO_X - BALL_FROM_X) * progress)


def _overlay(rgb: np.ndarray, index: int, scene: Scene) -> np.ndarray:
    """Draw the moving parts common to scenes: the ball (photo scenes) and the frame counter (every scene)."""
    frame = Image.fromarray(rgb)
    draw = ImageDraw.Draw(frame)
    if scene.scene in PHOTOS:
        x = ball_x(index / FPS, scene)
        draw.ellipse((x - BALL_RADIUS, BALL_Y - BALL_RADIUS, x + BALL_RADIUS, BALL_Y + BALL_RADIUS),
                     fill=(255, 205, 0), outline=(30, 30, 30), width=4)
    font = ImageFont.truetype(_font_path(handwriting=False), 28)
    # Light box, mid-grey digits: readable, and no "ink" added to the notes scene (tests count its dark pixels).
    draw.rectangle((WIDTH - 212, 10, WIDTH - 12, 54), fill=(240, 240, 240))
    draw.text((WIDTH - 112, 32), f"frame {index:04d}", font=font, fill=(105, 105, 115), anchor="mm")
    return np.asarray(frame)


def _vtt_time(seconds: float) -> str:
    return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:06.3f}"


def transcript_vtt() -> str:
    """The WebVTT transcript: one cue per scene, the narration of ``NARRATION``."""
    cues = [f"{_vtt_time(s.start)} --> {_vtt_time(s.end)}\n{NARRATION[s.scene]}" for s in SCENES]
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


def _font_path(handwriting: bool) -> str:
    from matplotlib import font_manager

    if handwriting:
        for path in HANDWRITING_FONTS:
            if Path(path).is_file():
                return path
        props = font_manager.FontProperties(family="DejaVu Sans", style="oblique")
    else:
        props = font_manager.FontProperties(family="DejaVu Sans")
    return font_manager.findfont(props, fallback_to_default=True)


# --- photo scenes ----------------------------------------------------------------------------------

def _photo_renderer(scene: Scene) -> Callable[[float], np.ndarray]:
    import skimage.data

    func, caption, (fx, fy) = PHOTOS[scene.scene]
    photo = Image.fromarray(getattr(skimage.data, func)()).convert("RGB")
    pw, ph = photo.size

    # Background: the photo cover-cropped to 16:9, blurred (down then up) and darkened.
    scale = max(WIDTH / pw, HEIGHT / ph)
    cw, ch = WIDTH / scale, HEIGHT / scale
    box = ((pw - cw) / 2, (ph - ch) / 2, (pw + cw) / 2, (ph + ch) / 2)
    small = photo.resize((64, 36), Image.Resampling.BOX, box=box)
    background = small.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    background = Image.fromarray((np.asarray(background, dtype=np.float32) * 0.45).astype(np.uint8))

    # Foreground: the photo fitted into 600 px of height (or 1180 px of width), zooming in by 8 %.
    fit = min(600 / ph, 1180 / pw)
    fg_w, fg_h = round(pw * fit), round(ph * fit)
    fg_x, fg_y = (WIDTH - fg_w) // 2, 24

    font = ImageFont.truetype(_font_path(handwriting=False), 30)
    bar_top = 648

    def render(t: float) -> np.ndarray:
        progress = (t - scene.start) / (scene.end - scene.start)
        zoom = 1.0 + 0.08 * progress
        w, h = pw / zoom, ph / zoom
        x0 = min(max(fx * pw - w / 2, 0.0), pw - w)
        y0 = min(max(fy * ph - h / 2, 0.0), ph - h)
        frame = background.copy()
        fg = photo.resize((fg_w, fg_h), Image.Resampling.BICUBIC, box=(x0, y0, x0 + w, y0 + h))
        frame.paste(fg, (fg_x, fg_y))
        draw = ImageDraw.Draw(frame)
        draw.rectangle((0, bar_top, WIDTH, HEIGHT), fill=(20, 20, 24))
        draw.text((WIDTH // 2, (bar_top + HEIGHT) // 2), caption, font=font, fill=(240, 240, 240), anchor="mm")
        return np.asarray(frame)

    return render


# --- chart scene -------------------------------------------------------------------------------------

def _chart_renderer(scene: Scene) -> Callable[[float], np.ndarray]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weeks = np.arange(52)
    # Synthetic, deterministic data: a trend plus a yearly wave (no real-world meaning).
    visits = 40 + 0.9 * weeks + 12 * np.sin(weeks / 52 * 2 * np.pi)
    signups = 15 + 0.35 * weeks + 6 * np.cos(weeks / 52 * 4 * np.pi)

    fig = Figure(figsize=(WIDTH / 100, HEIGHT / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.07, right=0.97, top=0.9, bottom=0.1)
    ax.set_xlim(0, 51)
    ax.set_ylim(0, 100)
    ax.set_title(CHART_TITLE, fontsize=20)
    ax.set_xlabel("week", fontsize=14)
    ax.set_ylabel("value", fontsize=14)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=13)
    (line_a,) = ax.plot([], [], color="#1f77b4", linewidth=3, label="visits")
    (line_b,) = ax.plot([], [], color="#d62728", linewidth=3, label="sign-ups")
    (head_a,) = ax.plot([], [], "o", color="#1f77b4", markersize=10)
    (head_b,) = ax.plot([], [], "o", color="#d62728", markersize=10)
    ax.legend(loc="upper left", fontsize=14)

    def render(t: float) -> np.ndarray:
        # The whole line is drawn after 85 % of the scene; the last second holds the finished chart.
        progress = min(1.0, (t - scene.start) / ((scene.end - scene.start) * 0.85))
        n = 2 + round(progress * (len(weeks) - 2))
        line_a.set_data(weeks[:n], visits[:n])
        line_b.set_data(weeks[:n], signups[:n])
        head_a.set_data(weeks[n - 1 : n], visits[n - 1 : n])
        head_b.set_data(weeks[n - 1 : n], signups[n - 1 : n])
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()

    return render


# --- handwriting scene -------------------------------------------------------------------------------

def _notes_renderer(scene: Scene) -> Callable[[float], np.ndarray]:
    paper = Image.new("RGB", (WIDTH, HEIGHT), (251, 247, 233))
    draw = ImageDraw.Draw(paper)
    line_gap, first_rule = 110, 150
    for y in range(first_rule, HEIGHT, line_gap):
        draw.line((0, y, WIDTH, y), fill=(170, 200, 235), width=2)
    draw.line((110, 0, 110, HEIGHT), fill=(230, 150, 150), width=3)
    font = ImageFont.truetype(_font_path(handwriting=True), 64)
    ink = (28, 42, 107)
    # Small fixed offsets so the lines do not look typeset.
    x_offsets = (150, 140, 146, 138, 144)
    # The title is there from the first frame; each numbered line is written out in 1.2 s.
    starts = (0.0, 0.4, 1.6, 2.8, 4.0)
    write_seconds = 1.2

    def render(t: float) -> np.ndarray:
        local = t - scene.start
        frame = paper.copy()
        d = ImageDraw.Draw(frame)
        for i, (text, x, start) in enumerate(zip(NOTES, x_offsets, starts, strict=True)):
            if i == 0:
                shown = len(text)
            else:
                shown = math.floor(len(text) * min(1.0, max(0.0, (local - start) / write_seconds)))
            if shown:
                d.text((x, first_rule + i * line_gap - 8), text[:shown], font=font, fill=ink, anchor="ls")
        return np.asarray(frame)

    return render


# --- writing the files -------------------------------------------------------------------------------

def _renderers() -> list[tuple[Scene, Callable[[float], np.ndarray]]]:
    out = []
    for scene in SCENES:
        if scene.scene in PHOTOS:
            out.append((scene, _photo_renderer(scene)))
        elif scene.scene == "growing chart":
            out.append((scene, _chart_renderer(scene)))
        else:
            out.append((scene, _notes_renderer(scene)))
    return out


def _visible_text(scene: Scene) -> list[str]:
    if scene.scene in PHOTOS:
        return [PHOTOS[scene.scene][1]]
    if scene.scene == "growing chart":
        return [CHART_TITLE]
    return list(NOTES)


def make_video(video_path: Path = OUT_VIDEO, json_path: Path = OUT_JSON) -> list[dict]:
    """Render every frame, encode the video, write the scene JSON and the transcript (``json_path`` with the suffix
    ``.vtt``); return the JSON rows.

    Example: ``make_video(Path("/tmp/v.mp4"), Path("/tmp/v.json"))``.
    """
    assert SCENES[0].start == 0 and SCENES[-1].end == DURATION
    assert all(a.end == b.start for a, b in itertools.pairwise(SCENES))
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    options = {"crf": "30", "preset": "medium"} if codec == "libx264" else {"qscale": "4"}
    renderers = _renderers()
    centre_means: dict[str, list[float]] = {}

    video_path.parent.mkdir(parents=True, exist_ok=True)
    # faststart: the index (moov) goes first, so players and seekers need not read to the end.
    # bitexact: no library version strings in the container, so the bytes depend on the pixels only.
    with av.open(str(video_path), "w", format="mp4",
                 container_options={"movflags": "+faststart", "fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        cc = stream.codec_context
        cc.gop_size = GOP
        # HD video is BT.709: convert with those matrices and say so in the stream, so decoders agree.
        cc.colorspace = cc.color_primaries = cc.color_trc = 1  # AVCOL_*_BT709
        cc.color_range = 1  # AVCOL_RANGE_MPEG (limited, "TV" range)
        for index in range(DURATION * FPS):
            t = index / FPS
            scene, render = next((s, r) for s, r in renderers if s.start <= t < s.end)
            rgb = _overlay(render(t), index, scene)
            assert rgb.shape == (HEIGHT, WIDTH, 3), rgb.shape
            if index == (scene.start + scene.end) * FPS // 2:
                centre_means[scene.scene] = [round(float(v), 1) for v in rgb.reshape(-1, 3).mean(axis=0)]
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)

    rows = [
        {
            "start": s.start,
            "end": s.end,
            "scene": s.scene,
            "description": s.description,
            "text": _visible_text(s),
            "centre_mean_rgb": centre_means[s.scene],
            "narration": NARRATION[s.scene],
            **({"ball": {"y": BALL_Y, "x_at_start": ball_x(s.start, s), "x_at_end": BALL_TO_X}}
               if s.scene in PHOTOS else {}),
        }
        for s in SCENES
    ]
    font = Path(_font_path(handwriting=True)).name
    for row in rows:
        if row["scene"] == "handwritten notes":
            row["font"] = font
    json_path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    json_path.with_suffix(".vtt").write_text(transcript_vtt(), encoding="utf-8")
    return rows


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_VIDEO, help="video path (default: images/sample_video.mp4)")
    parser.add_argument("--check", action="store_true",
                        help="render twice into a temporary folder and confirm the bytes are identical")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            a, b = Path(tmp, "a.mp4"), Path(tmp, "b.mp4")
            make_video(a, Path(tmp, "a.json"))
            make_video(b, Path(tmp, "b.json"))
            same = (_sha256(a) == _sha256(b) and Path(tmp, "a.json").read_bytes() == Path(tmp, "b.json").read_bytes()
                    and Path(tmp, "a.vtt").read_bytes() == Path(tmp, "b.vtt").read_bytes())
            print("deterministic: two runs are byte-identical" if same else "NOT deterministic: the runs differ")
            raise SystemExit(0 if same else 1)
    json_path = args.out.with_suffix(".json")
    make_video(args.out, json_path)
    size = args.out.stat().st_size
    print(f"wrote {args.out.name} ({size / 1e6:.2f} MB, {DURATION} s, {len(SCENES)} scenes), {json_path.name} "
          f"and {json_path.with_suffix('.vtt').name}")


if __name__ == "__main__":
    main()
