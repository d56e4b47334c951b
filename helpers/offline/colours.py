"""Colour names a person would use, from the pixels alone: perceptual (CIELAB) quantisation to a named palette.

The offline backend describes an image's main colours ("light blue 38%, dark green 27%, ..."). Earlier it named
median-cut RGB clusters by hue thresholds, which called a pale blue sky "white" and dark foliage "black". Here:

1. the image is shrunk to a thumbnail and converted from sRGB to CIELAB (D65), a space in which equal distances
   look roughly equally different to a person (CIE 1976; the formulas are the standard ones, in numpy below);
2. every pixel takes the name of the nearest colour of :data:`PALETTE` (21 everyday names, each with a
   reference sRGB value), lightness differences counting half (a shaded leaf is still green: the CMC 2:1 idea);
3. a uniform near-black or near-white **frame** around the picture (a scan's black surround, a white mat,
   letterbox bars) is measured and left out of the shares, but only when it really is a frame: it runs along at
   least two opposite edges and the same shade does not dominate the inside (a white page stays white).

16-bit images are scaled to 8 bits before they get here (``helpers.ocr.load_rgb`` uses
``helpers.image_metadata.normalise_mode``), so a 16-bit gradient is a gradient, not "white 100%".

>>> summary = analyse_colours(Image.new("RGB", (40, 30), (30, 90, 200)))
>>> summary.colours, summary.border
((('blue', 1.0),), '')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["PALETTE", "ColourSummary", "analyse_colours", "colour_name", "dominant_colours", "srgb_to_lab"]

#: Named reference colours (sRGB). Chosen so that everyday scenes get everyday names: a clear sky is light blue,
#: foliage in shade dark green, wood brown, paper white; checked on the course's photos (tests/test_colours.py).
PALETTE: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("black", (0, 0, 0)),
    ("dark grey", (75, 75, 75)),
    ("grey", (128, 128, 128)),
    ("light grey", (192, 192, 192)),
    ("white", (255, 255, 255)),
    ("red", (200, 30, 35)),
    ("dark red", (120, 25, 30)),
    ("pink", (240, 150, 175)),
    ("orange", (235, 130, 30)),
    ("brown", (125, 80, 45)),
    ("beige", (215, 195, 160)),
    ("yellow", (240, 215, 40)),
    ("olive", (120, 115, 50)),
    ("green", (60, 150, 60)),
    ("dark green", (40, 70, 35)),
    ("light green", (150, 210, 120)),
    ("teal", (0, 128, 128)),
    ("light blue", (165, 200, 235)),
    ("blue", (40, 90, 200)),
    ("navy", (25, 35, 90)),
    ("purple", (120, 60, 160)),
)

_THUMBNAIL = 128          # long side of the analysed copy
_LIGHTNESS_WEIGHT = 0.5   # lightness differences count half when naming (CMC l:c = 2:1)
_NEUTRAL_CHROMA = 8.0    # CIELAB chroma under which a colour reads as grey (JPEG noise on white paper: 2-5)
_BLACK_L = 10.0           # L* under which everything is black
_MIN_SHARE = 0.05         # names under 5% of the picture are left out
_MAX_NAMES = 5
# A border strip: a row/column whose pixels are (almost) all near-black (L* < 12) or near-white (L* > 95, chroma
# < 6). A frame must be at least 2% of the side on two opposite edges, and the same shade must cover less than
# half of the inside.
_BORDER_DARK_L, _BORDER_LIGHT_L, _BORDER_CHROMA = 12.0, 95.0, 6.0
_BORDER_ROW_SHARE = 0.98
_BORDER_MIN = 0.02
_BORDER_INSIDE_MAX = 0.5

_WHITE_POINT = np.array([0.95047, 1.0, 1.08883])
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of 8-bit sRGB values, shape ``(..., 3)`` in, ``(..., 3)`` out (L* 0-100).

    >>> (np.round(srgb_to_lab(np.array([[255, 255, 255], [255, 0, 0]])), 1) + 0.0).tolist()
    [[100.0, 0.0, 0.0], [53.2, 80.1, 67.2]]
    """
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE_POINT
    delta = 6 / 29
    f = np.where(xyz > delta ** 3, np.cbrt(xyz), xyz / (3 * delta ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


_NAMES = tuple(name for name, _ in PALETTE)
_PALETTE_LAB = srgb_to_lab(np.array([rgb for _, rgb in PALETTE]))
_NEUTRAL = np.hypot(_PALETTE_LAB[:, 1], _PALETTE_LAB[:, 2]) < 1.0      # black, the greys, white
_NEUTRAL_INDEX, _CHROMATIC_INDEX = np.flatnonzero(_NEUTRAL), np.flatnonzero(~_NEUTRAL)
_WEIGHTS = np.array([_LIGHTNESS_WEIGHT, 1.0, 1.0])


def _nearest(lab: np.ndarray) -> np.ndarray:
    """Index into :data:`PALETTE` of each Lab value's name (``(N, 3)`` -> ``(N,)``).

    A colour with chroma under :data:`_NEUTRAL_CHROMA` (or very dark) is a neutral, named by lightness alone
    (black, greys, white); any other takes the nearest chromatic reference, lightness counting half. People name
    a visibly tinted colour by its hue ("pale blue sky", "dark green leaves"), which a plain nearest-neighbour
    search would call white or dark grey.
    """
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    neutral = (chroma < _NEUTRAL_CHROMA) | (lab[:, 0] < _BLACK_L)
    by_lightness = np.abs(lab[:, None, 0] - _PALETTE_LAB[None, _NEUTRAL_INDEX, 0]).argmin(axis=1)
    diff = (lab[:, None, :] - _PALETTE_LAB[None, _CHROMATIC_INDEX, :]) * _WEIGHTS
    by_colour = np.einsum("npc,npc->np", diff, diff).argmin(axis=1)
    return np.where(neutral, _NEUTRAL_INDEX[by_lightness], _CHROMATIC_INDEX[by_colour])


def colour_name(rgb: tuple[int, int, int]) -> str:
    """The :data:`PALETTE` name nearest to an sRGB colour in CIELAB.

    >>> colour_name((255, 0, 0)), colour_name((20, 40, 200)), colour_name((128, 128, 128))
    ('red', 'blue', 'grey')
    >>> colour_name((185, 205, 230)), colour_name((50, 60, 35)), colour_name((139, 90, 43))
    ('light blue', 'dark green', 'brown')
    """
    return _NAMES[int(_nearest(srgb_to_lab(np.array([rgb])))[0])]


@dataclass(frozen=True)
class ColourSummary:
    """The main colours (name, share of the picture), a frame that was left out, and the main colour of the
    top, middle and bottom thirds and of the left, centre and right thirds of the picture (inside any frame)."""

    colours: tuple[tuple[str, float], ...]
    border: str                      # "" or e.g. "black border (left and right, 12% of the image)"
    thirds: tuple[str, str, str]     # top, middle, bottom
    columns: tuple[str, str, str]    # left, centre, right


def _border_rows(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: is it (almost) all near-black, is it (almost) all near-white."""
    lightness, chroma = lab[..., 0], np.hypot(lab[..., 1], lab[..., 2])
    dark = (lightness < _BORDER_DARK_L).mean(axis=1) >= _BORDER_ROW_SHARE
    light = ((lightness > _BORDER_LIGHT_L) & (chroma < _BORDER_CHROMA)).mean(axis=1) >= _BORDER_ROW_SHARE
    return dark, light


def _run(flags: np.ndarray) -> int:
    """How many leading ``True`` values ``flags`` has."""
    return len(flags) if flags.all() else int(np.argmin(flags))


def _find_border(lab: np.ndarray) -> tuple[tuple[int, int, int, int], str]:
    """``((top, bottom, left, right) widths in pixels, shade)`` of a uniform near-black/white frame, or zeros."""
    height, width = lab.shape[:2]
    rows_dark, rows_light = _border_rows(lab)
    cols_dark, cols_light = _border_rows(lab.transpose(1, 0, 2))
    for shade, rows, cols in (("black", rows_dark, cols_dark), ("white", rows_light, cols_light)):
        top, bottom = _run(rows), _run(rows[::-1])
        left, right = _run(cols), _run(cols[::-1])
        if top >= height or left >= width:
            continue                                  # the whole image is that shade: content, not a frame
        min_rows, min_cols = max(1, round(_BORDER_MIN * height)), max(1, round(_BORDER_MIN * width))
        vertical = top >= min_rows and bottom >= min_rows
        horizontal = left >= min_cols and right >= min_cols
        if not (vertical or horizontal):
            continue
        widths = (top if vertical else 0, bottom if vertical else 0, left if horizontal else 0,
                  right if horizontal else 0)
        inside = lab[widths[0]:height - widths[1], widths[2]:width - widths[3]]
        in_dark, in_light = _shade_masks(inside)
        if (in_dark if shade == "black" else in_light).mean() < _BORDER_INSIDE_MAX:
            return widths, shade
    return (0, 0, 0, 0), ""


def _shade_masks(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lightness, chroma = lab[..., 0], np.hypot(lab[..., 1], lab[..., 2])
    return lightness < _BORDER_DARK_L, (lightness > _BORDER_LIGHT_L) & (chroma < _BORDER_CHROMA)


def _describe_border(widths: tuple[int, int, int, int], shade: str, size: tuple[int, int]) -> str:
    top, bottom, left, right = widths
    height, width = size
    sides = [name for name, w in (("top", top), ("bottom", bottom), ("left", left), ("right", right)) if w]
    where = "all round" if len(sides) == 4 else " and ".join(sides)
    share = 1 - (height - top - bottom) * (width - left - right) / (height * width)
    return f"{shade} border ({where}, {share * 100:.0f}% of the image)"


def _ranked(indices: np.ndarray) -> tuple[tuple[str, float], ...]:
    counts = np.bincount(indices.ravel(), minlength=len(_NAMES))
    total = max(1, int(counts.sum()))
    ranked = sorted(((_NAMES[i], round(int(c) / total, 2)) for i, c in enumerate(counts) if c),
                    key=lambda item: (-item[1], item[0]))
    return tuple((name, share) for name, share in ranked if share >= _MIN_SHARE)[:_MAX_NAMES]


def analyse_colours(image: Image.Image) -> ColourSummary:
    """Main colours of ``image`` in plain names with their shares (largest first, names under 5% left out, at
    most 5), any uniform near-black/white frame (left out of the shares), and the top/middle/bottom colours.

    >>> framed = Image.new("RGB", (200, 100), "black"); framed.paste((60, 150, 60), (20, 10, 180, 90))
    >>> summary = analyse_colours(framed)
    >>> summary.colours, summary.border
    ((('green', 1.0),), 'black border (all round, 35% of the image)')
    """
    thumb = image.convert("RGB")
    thumb.thumbnail((_THUMBNAIL, _THUMBNAIL), Image.Resampling.BOX)
    lab = srgb_to_lab(np.asarray(thumb))
    widths, shade = _find_border(lab)
    border = _describe_border(widths, shade, lab.shape[:2]) if shade else ""
    # One more row/column on each framed side: where the thumbnail blends frame and picture.
    top, bottom, left, right = (w + 1 if w else 0 for w in widths)
    inside = lab[top:lab.shape[0] - bottom, left:lab.shape[1] - right]
    labels = _nearest(inside.reshape(-1, 3)).reshape(inside.shape[:2])
    overall = _ranked(labels)
    fallback = overall[0][0] if overall else ""

    def main_of(part: np.ndarray) -> str:
        return _NAMES[int(np.bincount(part.ravel(), minlength=len(_NAMES)).argmax())] if part.size else fallback

    thirds = tuple(main_of(part) for part in np.array_split(labels, 3, axis=0))
    columns = tuple(main_of(part) for part in np.array_split(labels, 3, axis=1))
    return ColourSummary(overall, border, thirds, columns)  # type: ignore[arg-type]

def dominant_colours(image: Image.Image) -> tuple[tuple[str, float], ...]:
    """Just the ``(name, share)`` pairs of :func:`analyse_colours`.

    >>> dominant_colours(Image.new("RGB", (10, 10), (250, 10, 10)))
    (('red', 1.0),)
    """
    return analyse_colours(image).colours
