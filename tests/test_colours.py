"""helpers.offline.colours: colour names a person would use, frames left out only when they are frames, 16-bit
images scaled rather than clipped (issue 13: the Summer Palace was "white 39%, black 26%", a 16-bit gradient
"white (100%)")."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers.ocr import load_rgb
from helpers.offline.analysis import analyze
from helpers.offline.colours import PALETTE, analyse_colours, colour_name, srgb_to_lab

IMAGES = Path(__file__).resolve().parents[1] / "images"


def encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def names(colours) -> list[str]:
    return [name for name, _ in colours]


def share(colours, *wanted: str) -> float:
    return sum(s for name, s in colours if name in wanted)


def noisy(rgb: tuple[int, int, int], size: tuple[int, int], seed: int, spread: float = 12) -> np.ndarray:
    """A patch of ``rgb`` with sensor-like noise (a photo is never one flat colour)."""
    rng = np.random.default_rng(seed)
    return np.clip(np.array(rgb) + rng.normal(0, spread, (size[1], size[0], 3)), 0, 255).astype(np.uint8)


def sky_over_trees(width: int = 480, height: int = 320) -> Image.Image:
    """Top half a pale summer sky, bottom half foliage in shade: what a landscape photo is made of."""
    pixels = np.vstack([noisy((170, 205, 240), (width, height // 2), 1), noisy((45, 70, 35), (width, height // 2), 2)])
    return Image.fromarray(pixels, "RGB")


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    with Image.open(IMAGES / "astronaut.jpg") as img:
        return img.convert("RGB")


# --- names ----------------------------------------------------------------------------------------------------

def test_lab_conversion_matches_the_standard_values():
    # CIELAB (D65) of sRGB white, red, mid grey: the published values (e.g. Bruce Lindbloom's calculator).
    lab = srgb_to_lab(np.array([[255, 255, 255], [255, 0, 0], [128, 128, 128], [0, 0, 0]]))
    assert np.allclose(lab, [[100, 0, 0], [53.24, 80.09, 67.20], [53.59, 0, 0], [0, 0, 0]], atol=0.05)


@pytest.mark.parametrize(("rgb", "name"), [
    ((255, 0, 0), "red"), ((20, 40, 200), "blue"), ((128, 128, 128), "grey"), ((250, 250, 250), "white"),
    ((5, 5, 5), "black"), ((185, 205, 230), "light blue"), ((50, 60, 35), "dark green"), ((139, 90, 43), "brown"),
    ((60, 160, 60), "green"), ((250, 220, 30), "yellow"), ((255, 140, 0), "orange"), ((255, 182, 193), "pink"),
    ((20, 30, 80), "navy"), ((230, 225, 215), "white"),
])
def test_colour_names_are_the_words_a_person_uses(rgb, name):
    assert colour_name(rgb) == name


def test_palette_names_are_unique_and_name_themselves():
    assert len({name for name, _ in PALETTE}) == len(PALETTE)
    assert all(colour_name(rgb) == name for name, rgb in PALETTE)


# --- photos ---------------------------------------------------------------------------------------------------

def test_sky_over_trees_is_light_blue_over_green():
    summary = analyse_colours(sky_over_trees())
    assert names(summary.colours)[:2] == ["dark green", "light blue"] or \
        names(summary.colours)[:2] == ["light blue", "dark green"]
    assert share(summary.colours, "light blue") >= 0.45 and share(summary.colours, "dark green", "green") >= 0.45
    assert summary.thirds[0] == "light blue" and summary.thirds[2] == "dark green"
    assert summary.border == ""


def test_summer_palace_photo_has_its_blue_sky_and_green_trees():
    # Issue 13: this photo was "white 39%, black 26%, brown 16%, grey 10%, olive 9%".
    report = analyze((IMAGES / "landscape_summer_palace.jpg").read_bytes())
    found = dict(report.colours)
    assert "light blue" in found and "dark green" in found
    assert found.get("black", 0) < 0.15 and found.get("white", 0) < 0.3
    assert report.thirds[0] == "light blue" and report.thirds[2] == "dark green"


# --- frames ---------------------------------------------------------------------------------------------------

def test_a_black_frame_is_left_out_and_named(astronaut: Image.Image):
    framed = Image.new("RGB", (512 + 2 * 60, 512 + 2 * 60), (3, 3, 3))
    framed.paste(astronaut, (60, 60))
    plain, bordered = analyse_colours(astronaut), analyse_colours(framed)
    assert bordered.border.startswith("black border (all round")
    assert plain.border == ""
    # The picture inside the frame gets the same main colours, within a couple of points (the frame is not
    # counted as "black": the photo's own black is 19%, the frame alone is 34% of the framed image).
    assert names(bordered.colours)[:4] == names(plain.colours)[:4]
    assert all(abs(dict(bordered.colours)[n] - s) <= 0.03 for n, s in plain.colours[:4])


def test_letterbox_bars_are_a_frame_but_a_night_sky_is_not():
    scene = noisy((60, 150, 60), (400, 200), 3)
    letterbox = np.vstack([np.zeros((50, 400, 3), np.uint8), scene, np.zeros((50, 400, 3), np.uint8)])
    summary = analyse_colours(Image.fromarray(letterbox))
    assert summary.border.startswith("black border (top and bottom")
    assert names(summary.colours) == ["green"]
    # Black only along the top is part of the picture (a night sky), not a frame.
    night = np.vstack([np.zeros((100, 400, 3), np.uint8), scene])
    summary = analyse_colours(Image.fromarray(night))
    assert summary.border == ""
    assert 0.3 <= share(summary.colours, "black") <= 0.36


def test_a_white_page_keeps_its_white_margins():
    page = Image.new("RGB", (600, 800), "white")
    draw = ImageDraw.Draw(page)
    for y in range(100, 700, 40):
        draw.line((80, y, 520, y), fill="black", width=3)
    summary = analyse_colours(page)
    assert summary.border == ""
    assert summary.colours[0][0] == "white" and summary.colours[0][1] >= 0.8


# --- 16-bit ---------------------------------------------------------------------------------------------------

def gradient16() -> np.ndarray:
    return np.tile(np.linspace(0, 65535, 256), (64, 1)).astype(np.uint16)


def test_a_16_bit_grey_gradient_is_a_gradient_not_white():
    data = encode(Image.fromarray(gradient16()))            # PNG mode I;16
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == "I;16"
    pixels = np.asarray(load_rgb(data))
    assert pixels[0, 0].tolist() == [0, 0, 0] and pixels[0, -1].tolist() == [255, 255, 255]
    assert abs(float(pixels.mean()) - 127.5) < 1
    report = analyze(data)
    assert share(report.colours, "white") < 0.3
    assert {"black", "dark grey", "grey", "light grey", "white"} >= set(names(report.colours))
    assert len(report.colours) >= 4
    assert report.columns == ("dark grey", "grey", "light grey") or report.columns[0] != report.columns[2]


def test_a_16_bit_rgb_png_is_read_at_its_real_colours():
    g = gradient16()
    rgb16 = np.dstack([np.full_like(g, 8000), np.full_like(g, 30000), np.full_like(g, 60000)])  # a mid blue
    ok, encoded = cv2.imencode(".png", rgb16[..., ::-1])     # OpenCV writes 48-bit PNGs (BGR order)
    assert ok
    report = analyze(encoded.tobytes())
    assert report.colours[0][0] in {"blue", "light blue"} and report.colours[0][1] >= 0.95
