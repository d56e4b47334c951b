"""Local OCR with RapidOCR, and the character error rate used to score any transcription.

Taught in notebooks/05_handwriting_ocr.ipynb, where a real model's transcription of a handwritten page is
compared with this local OCR and with a ground-truth transcript. The offline backend
(``helpers.offline.analysis``) uses the same functions to answer "what does it say?".

The engine (:mod:`helpers.ocr_engine`) is RapidOCR 3.x (the ``rapidocr`` package) on ONNX Runtime. Its wheel
bundles three ONNX models: PP-OCRv6 small text detection and recognition (Chinese, English and other
Latin-script languages) and the 0/180-degree text-direction classifier. Exactly those bundled files are loaded
(:func:`bundled_models`), so nothing is ever downloaded. Source: the files in ``rapidocr/models``, its ``config.yaml`` and
``default_models.yaml`` (version 3.10.0, checked 2026-12-07).

>>> from helpers.ocr import transcribe, character_error_rate
>>> text = transcribe("handwritten_note.jpg")                    # doctest: +SKIP
>>> character_error_rate("Hello world", "Hel1o world")
0.09090909090909091
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein

from helpers.errors import UnsupportedImageError
from helpers.image_metadata import normalise_mode
from helpers.images import load_image
from helpers.ocr_engine import bundled_models, engine_description, get_engine, read_boxes
from helpers.writing import CJK_NO_SPACE

__all__ = ["MAX_OCR_SIDE", "MAX_UPSCALE", "MIN_LEGIBLE_SIDE", "MIN_OCR_SIDE", "SAME_ROW_TOLERANCE", "WARM_UP_SIZES",
           "OcrImage", "OcrLine", "bundled_models", "character_error_rate", "engine_description", "get_engine",
           "group_rows", "lines_to_text", "load_rgb", "normalise_text", "ocr_lines", "reading_order", "transcribe",
           "warm_up"]

#: What the OCR functions accept: anything :func:`helpers.images.load_image` opens.
OcrImage = Image.Image | str | os.PathLike | bytes

#: Images whose long side is larger than this are downscaled before OCR (boxes are mapped back to the
#: original pixels). 1600 px keeps 10-12 px tall text readable and bounds detection time on 2 cores.
MAX_OCR_SIDE = 1600

#: Images whose long side is smaller than this are upscaled (at most ``MAX_UPSCALE`` times) before OCR:
#: detection runs at 960 px anyway, and recognition reads small print better from the larger crops (chart
#: tick labels at 640x480: "Quarterlysales" became "Quarterly sales" and three more labels were found).
MIN_OCR_SIDE = 960
MAX_UPSCALE = 3.0

#: Two boxes belong to the same text row when their vertical centres differ by less than this fraction of
#: the smaller box height.
SAME_ROW_TOLERANCE = 0.5



@dataclass(frozen=True)
class OcrLine:
    """One detected text box: its text, its 4 corner points in pixels of the analysed image, its score.

    ``box`` runs clockwise from the top-left corner, as RapidOCR returns it; ``score`` is the recognizer's
    confidence between 0 and 1.

    >>> line = OcrLine("Hello", ((10.0, 5.0), (60.0, 5.0), (60.0, 25.0), (10.0, 25.0)), 0.98)
    >>> line.left, line.top, line.height
    (10.0, 5.0, 20.0)
    """

    text: str
    box: tuple[tuple[float, float], ...]
    score: float

    @property
    def left(self) -> float:
        """Smallest x of the box."""
        return min(x for x, _ in self.box)

    @property
    def right(self) -> float:
        """Largest x of the box."""
        return max(x for x, _ in self.box)

    @property
    def top(self) -> float:
        """Smallest y of the box."""
        return min(y for _, y in self.box)

    @property
    def bottom(self) -> float:
        """Largest y of the box."""
        return max(y for _, y in self.box)

    @property
    def height(self) -> float:
        """Height of the box's bounding rectangle."""
        return self.bottom - self.top

    @property
    def centre_y(self) -> float:
        """Vertical centre of the box."""
        return (self.top + self.bottom) / 2


# --- loading -----------------------------------------------------------------------------------------

def load_rgb(image: OcrImage) -> Image.Image:
    """Open ``image`` (PIL image, path, URL or encoded bytes) as an RGB image, upright by its EXIF orientation.

    Opening, format checks and errors are :func:`helpers.images.load_image`'s (first frame of an animated
    image, ``ImageNotFoundError`` / ``UnsupportedImageError`` naming the source); transparent pixels are then
    composited on white, so dark text on a transparent PNG stays readable. 16-bit greyscale (PNG ``I;16``) and
    32-bit images are scaled to 8 bits, not clipped, so a 16-bit gradient stays a gradient.

    >>> load_rgb(Image.new("RGBA", (4, 3))).mode
    'RGB'
    """
    img = load_image(image)
    try:
        if img.mode.startswith("I") or img.mode == "F":   # 16/32-bit: scaled to 8 bits (convert() would clip)
            img = normalise_mode(img)[0]
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(canvas, rgba).convert("RGB")
        return img.convert("RGB")
    except (OSError, ValueError) as err:
        raise UnsupportedImageError(
            f"The image could not be converted to RGB: {err}.",
            fix="re-save the file as PNG or JPEG and try again.",
        ) from err


# --- engine ------------------------------------------------------------------------------------------

#: Page sizes :func:`warm_up` reads: 4:3 and 16:9 landscape (photos, screenshots, video frames) and 3:4
#: portrait (phone photos). ONNX Runtime plans its memory per input shape, so the first image of a new shape
#: costs about 0.2-0.4 s more (measured 2025-11-21); these are the shapes most course images are read at.
WARM_UP_SIZES: tuple[tuple[int, int], ...] = ((1200, 900), (1280, 720), (900, 1200))


def warm_up(sizes: tuple[tuple[int, int], ...] = WARM_UP_SIZES) -> None:
    """Load the models and read one page of each size in ``sizes``, so no real request pays for that.

    ONNX Runtime allocates and plans its buffers on the first inference at each input shape, which makes that
    call much slower than the next ones. The offline server calls this once at start-up, in the background
    (about 2 s on 2 cores). Pass ``sizes=()`` to only load the models.

    >>> warm_up()                    # doctest: +SKIP
    """
    get_engine()
    try:
        font = ImageFont.load_default(size=32)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        font = ImageFont.load_default()
    for size in sizes:
        page = Image.new("RGB", size, "white")
        ImageDraw.Draw(page).text((40, 40), "Warm up: 0123456789", fill="black", font=font)
        ocr_lines(page)


# --- OCR -----------------------------------------------------------------------------------------------

#: Pixels: after scaling for OCR, an image thinner than this has no legible text (see ocr_lines).
MIN_LEGIBLE_SIDE = 8


def ocr_lines(image: OcrImage, *, max_side: int = MAX_OCR_SIDE) -> list[OcrLine]:
    """Detect and read the text in ``image``; return its text boxes in reading order.

    Reading order: rows from top to bottom (boxes whose vertical centres are close form one row, see
    :func:`reading_order`), and left to right within a row. Images larger than ``max_side`` on their long
    side are read from a downscaled copy, images smaller than ``MIN_OCR_SIDE`` from an upscaled one; the
    boxes are always in pixels of the original (EXIF-upright) image. Taught in
    notebooks/05_handwriting_ocr.ipynb.

    >>> for line in ocr_lines("scan.png"):                               # doctest: +SKIP
    ...     print(line.text, line.score, line.box[0])
    """
    rgb = load_rgb(image)
    width, height = rgb.size
    long_side = max(width, height)
    if long_side > max_side:
        scale = max_side / long_side
        resample = Image.Resampling.LANCZOS
    else:
        target = min(MIN_OCR_SIDE, max_side)
        scale = min(target / long_side, MAX_UPSCALE) if long_side < target else 1.0
        resample = Image.Resampling.BICUBIC
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = rgb.resize(size, resample, reducing_gap=3.0 if scale < 1 else None)
    if min(rgb.size) < MIN_LEGIBLE_SIDE:
        # Nothing this thin is legible, and RapidOCR would blow a 1600x1 strip up to gigabytes of padding.
        return []
    sx, sy = width / rgb.width, height / rgb.height
    lines = []
    for box, text, score in read_boxes(np.asarray(rgb)[:, :, ::-1]):
        text = str(text).strip()
        if not text:
            continue
        points = tuple(
            (round(min(max(float(x) * sx, 0.0), width), 1), round(min(max(float(y) * sy, 0.0), height), 1))
            for x, y in box
        )
        lines.append(OcrLine(text=text, box=points, score=round(float(score), 4)))
    return reading_order(lines)


def group_rows(lines: list[OcrLine] | tuple[OcrLine, ...]) -> list[list[OcrLine]]:
    """Group text boxes into rows (top to bottom), each row sorted left to right.

    A box joins the current row when its vertical centre is within ``SAME_ROW_TOLERANCE`` (half) of the
    smaller box height from the row's centre; otherwise it starts a new row.

    >>> a = OcrLine("right", ((200, 10), (260, 10), (260, 30), (200, 30)), 1.0)
    >>> b = OcrLine("left", ((10, 12), (60, 12), (60, 32), (10, 32)), 1.0)
    >>> [[line.text for line in row] for row in group_rows([a, b])]
    [['left', 'right']]
    """
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.centre_y, ln.left)):
        if rows:
            row = rows[-1]
            row_centre = sum(ln.centre_y for ln in row) / len(row)
            row_height = min(ln.height for ln in row)
            if abs(line.centre_y - row_centre) < SAME_ROW_TOLERANCE * max(min(row_height, line.height), 1.0):
                row.append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: (ln.left, ln.top)) for row in rows]


def reading_order(lines: list[OcrLine] | tuple[OcrLine, ...]) -> list[OcrLine]:
    """Sort text boxes top to bottom, then left to right within a row (see :func:`group_rows`).

    >>> a = OcrLine("second", ((0, 50), (90, 50), (90, 70), (0, 70)), 1.0)
    >>> b = OcrLine("first", ((0, 10), (90, 10), (90, 30), (0, 30)), 1.0)
    >>> [line.text for line in reading_order([a, b])]
    ['first', 'second']
    """
    return [line for row in group_rows(lines) for line in row]


def lines_to_text(lines: list[OcrLine] | tuple[OcrLine, ...]) -> str:
    """Join text boxes into a transcription: boxes of one row joined by a space, rows by newlines.

    >>> a = OcrLine("Hello", ((0, 10), (50, 10), (50, 30), (0, 30)), 1.0)
    >>> b = OcrLine("world", ((60, 10), (110, 10), (110, 30), (60, 30)), 1.0)
    >>> lines_to_text([b, a])
    'Hello world'
    """
    return "\n".join(" ".join(line.text for line in row) for row in group_rows(lines))


def transcribe(image: OcrImage, *, max_side: int = MAX_OCR_SIDE) -> str:
    """The text of ``image`` in reading order, one text row per line ("" if none was found).

    Taught in notebooks/05_handwriting_ocr.ipynb.

    >>> print(transcribe("handwritten_note.jpg"))                       # doctest: +SKIP
    """
    return lines_to_text(ocr_lines(image, max_side=max_side))


# --- scoring -----------------------------------------------------------------------------------------

_WHITESPACE = re.compile(r"\s+")
# CJK ideographs, kana, Hangul and CJK punctuation: scripts written without spaces between words.
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{CJK_NO_SPACE}]) (?=[{CJK_NO_SPACE}])")


def normalise_text(text: str) -> str:
    """Normalise a transcription before scoring it; what :func:`character_error_rate` compares.

    1. Unicode NFKC: full-width letters and digits become ASCII, ligatures are split, compatibility
       forms (e.g. the full-width comma ``，`` -> ``,``) are unified, so an OCR engine and a
       human typist who chose different code points for the same glyph are not penalised.
    2. Every run of whitespace (spaces, tabs, newlines) becomes one space; leading and trailing
       whitespace is removed. Line breaks therefore do not count, only the characters.
    3. A space between two CJK characters is removed: Chinese and Japanese do not separate words, and
       OCR engines insert such spaces inconsistently.

    Case and punctuation are kept: they are part of a faithful transcription.

    >>> normalise_text("  Hello\\n\\tＷｏｒｌｄ ")
    'Hello World'
    >>> normalise_text("你 好，世界")
    '你好,世界'
    """
    text = unicodedata.normalize("NFKC", text)
    text = _WHITESPACE.sub(" ", text).strip()
    return _SPACE_BETWEEN_CJK.sub("", text)


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Character error rate: Levenshtein edits (insertions, deletions, substitutions) / reference length.

    Both texts are first normalised with :func:`normalise_text`. 0.0 is a perfect transcription; the
    value can exceed 1.0 when the hypothesis adds many characters. An empty reference gives 0.0 for an
    empty hypothesis and 1.0 otherwise. Characters are Unicode code points, so Chinese works as expected.
    The edit distance comes from ``rapidfuzz.distance.Levenshtein``. Taught in
    notebooks/05_handwriting_ocr.ipynb.

    >>> character_error_rate("kitten", "sitting")
    0.5
    >>> character_error_rate("你好世界", "你好世")
    0.25
    """
    ref, hyp = normalise_text(reference), normalise_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)
