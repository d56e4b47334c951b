"""Decoding an image with Pillow: the first frame, fully loaded, every failure turned into a clear course error.

Part of the image helpers (``helpers.images`` builds on it; :mod:`helpers.image_sources` reads the bytes).
Empty, truncated, non-image (text, PDF, HTML, video), SVG, HEIC/AVIF files and decompression bombs each get an
:class:`~helpers.errors.ImageError` naming the source and what to do; an animated image warns and keeps one frame.
EPS is never opened (its decoder runs Ghostscript on the file).

Taught in notebooks/02_local_images_base64.ipynb.

>>> from PIL import Image
>>> load_image(Image.new("RGB", (30, 20))).size
(30, 20)
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from helpers.errors import ImageTooLargeError, UnsupportedImageError
from helpers.image_formats import ADVICE_CONVERT, DOWNLOAD_TIMEOUT, Kind, sniff, with_article
from helpers.image_sources import DOWNLOAD_ADVICE, ImageSource, Source, read_source

__all__ = ["Decoded", "decode", "load_image", "warn_if_animated"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif",
                   ".avif", ".ico"}


@dataclass(frozen=True)
class Decoded:
    """A decoded image and the facts about its file that re-encoding needs."""

    image: Image.Image                 # first frame, loaded, as stored (not yet oriented); owned by us
    format: str | None                 # Pillow's format name ("PNG", "JPEG", "MPO", "BMP"...) or None
    frames: int
    jpeg_qtables: Any = None           # a JPEG source's quantization tables, for re-encoding
    jpeg_sampling: int = -1            # a JPEG source's chroma subsampling (Pillow's code), -1 if unknown
    lossless_webp: bool = False        # a WEBP source stored losslessly (VP8L)
    stored_size: tuple[int, int] | None = None   # the file's size when ``image`` was decoded reduced (JPEG draft)

    @property
    def size(self) -> tuple[int, int]:
        """The size stored in the file (not the reduced size of a draft decode)."""
        return self.stored_size or self.image.size


def _allowed_formats() -> tuple[str, ...]:
    # Every format Pillow reads except EPS, whose decoder runs Ghostscript on the file.
    Image.init()
    return tuple(name for name in Image.ID if name != "EPS")


def _bomb_error(src: Source, err: BaseException) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{src.name} has too many pixels to open safely (Pillow's decompression-bomb protection: {err}).",
        source=src.name,
        fix="if you trust the file, shrink it first in an image editor; a model never looks at more than a "
            "few megapixels anyway.")


def _jpeg_facts(image: Image.Image) -> tuple[Any, int]:
    """A JPEG's quantization tables and chroma subsampling (re-encoding keeps coarse ones), else (None, -1)."""
    if image.format not in ("JPEG", "MPO"):
        return None, -1
    return getattr(image, "quantization", None), JpegImagePlugin.get_sampling(image)


def _webp_is_lossless(data: bytes) -> bool:
    """True for a WEBP whose picture is a lossless VP8L bitstream (walks the RIFF chunks)."""
    if not (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return False
    i = 12
    while i + 8 <= len(data):
        fourcc = data[i:i + 4]
        if fourcc in (b"VP8L", b"VP8 "):
            return fourcc == b"VP8L"
        size = int.from_bytes(data[i + 4:i + 8], "little")
        i += 8 + size + (size & 1)
    return False



def decode(src: Source, fit: Callable[[int, int], tuple[int, int]] | None = None) -> Decoded:
    """Open and fully decode the first frame; every failure becomes a course error naming the source.

    ``fit(width, height)`` (as displayed, after EXIF orientation) gives the size the image will be resized to. A
    JPEG at least twice that size on both sides is then decoded directly at 1/2, 1/4 or 1/8 scale (Pillow's
    ``draft``: the DCT skips most of the work), never below the target, so resizing still ends at exactly the
    same size; ``Decoded.size`` keeps the stored size. benchmarks/prepare_photo.py measures the gain.

    >>> decode(Source("empty.png", "empty.png", data=b""))
    Traceback (most recent call last):
    ...
    helpers.errors.UnsupportedImageError: empty.png is empty (0 bytes). What to do: re-save or re-download the image.
    """
    if src.image is not None:
        return _decode_pillow(src)
    data = src.data or b""
    if not data:
        raise UnsupportedImageError(f"{src.name} is empty (0 bytes).", source=src.name,
                                    fix=("re-save or re-download the image. " + src.hint).strip())
    kind = sniff(data)
    if kind is not None and kind.mime == "image/svg+xml":
        raise UnsupportedImageError(
            f"{src.name} is an SVG drawing (vector graphics); the API takes only PNG, JPEG, WEBP and GIF.",
            source=src.name, fix="export it to PNG (Inkscape: File > Export; or cairosvg.svg2png), then pass the PNG.")
    image: Image.Image | None = None
    try:
        image = Image.open(io.BytesIO(data), formats=_allowed_formats())
        frames = _frame_count(image)
        stored = image.size
        if fit is not None and image.format == "JPEG" and frames == 1:
            _draft(image, fit)
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _bomb_error(src, err) from err
    except MemoryError as err:
        raise ImageTooLargeError(f"{src.name} is too large to decode in memory.", source=src.name,
                                 fix="shrink it in an image editor first.") from err
    except Exception as err:  # Pillow reports damaged data as OSError, ValueError, SyntaxError, EOFError...
        if isinstance(err, UnidentifiedImageError) or image is None or (kind is not None and kind.mime is None):
            raise _unreadable(src, kind, data) from err
        label = kind.label if kind else (image.format or "image")
        state = "truncated (the file ends too early)" if "truncated" in str(err) else "damaged"
        raise UnsupportedImageError(f"{src.name} is {with_article(label)} file that is {state}: {err}.", source=src.name,
                                    fix=("re-download or re-export the image; an interrupted download or copy "
                                         "often causes this. " + src.hint).strip()) from err
    tables, sampling = _jpeg_facts(image)
    return Decoded(image, image.format, frames, tables, sampling, _webp_is_lossless(data),
                   stored if image.size != stored else None)


def _draft(image: Image.Image, fit: Callable[[int, int], tuple[int, int]]) -> None:
    """Ask libjpeg for a reduced decode (1/2, 1/4, 1/8) no smaller than the target, when that helps."""
    width, height = image.size
    turned = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)        # EXIF orientation: stored sideways
    target_w, target_h = fit(height, width) if turned else fit(width, height)
    if turned:
        target_w, target_h = target_h, target_w
    if 2 * target_w <= width and 2 * target_h <= height:
        image.draft(image.mode, (target_w, target_h))


def _decode_pillow(src: Source) -> Decoded:
    """A caller's Pillow image: copied (never modified); the frame currently selected is used."""
    given = src.image
    assert given is not None
    try:
        frames = _frame_count(given)
        image = given.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _bomb_error(src, err) from err
    except Exception as err:
        raise UnsupportedImageError(f"{src.name} cannot be decoded: {err}.", source=src.name,
                                    fix="re-open the file it came from.") from err
    tables, sampling = _jpeg_facts(given)
    return Decoded(image, given.format, frames, tables, sampling)


def _frame_count(image: Image.Image) -> int:
    if image.format == "MPO":          # a camera's extra pictures (depth map, stereo pair), not an animation
        return 1
    return int(getattr(image, "n_frames", 1) or 1)


def _unreadable(src: Source, kind: Kind | None, data: bytes) -> UnsupportedImageError:
    """The error for bytes Pillow cannot open: not an image at all, or a format this Pillow cannot read."""
    if kind is not None and kind.mime is None:
        ext = Path(src.short_name).suffix.lower()
        named = f" (its name ends in {ext}, but its bytes are not an image)" if ext in _IMAGE_SUFFIXES else ""
        fix = {"a PDF document": "export the page as PNG (e.g. 'pdftoppm -png file.pdf page'), then pass the PNG.",
               "a video (MP4/MOV)": "sample still frames with helpers.video.sample_frames(...) and send those.",
               "an HTML web page": ("the address gave a web page, not the image file. " + DOWNLOAD_ADVICE
                                    if src.hint else "save the image itself (in a browser: right-click it > "
                                    "Save image as...), not the web page around it.")}.get(
            kind.label, ("pass a PNG, JPEG, WEBP or GIF file. " + src.hint).strip())
        return UnsupportedImageError(f"{src.name} contains {kind.label}, not an image{named}.", source=src.name,
                                     fix=fix)
    if kind is not None and kind.mime in ("image/heic", "image/heif", "image/avif", "image/jxl", "image/jp2"):
        extra = (" On an iPhone, Settings > Camera > Formats > Most Compatible saves JPEGs; or "
                 "pip install pillow-heif and call pillow_heif.register_heif_opener() once."
                 if kind.mime in ("image/heic", "image/heif") else "")
        return UnsupportedImageError(f"{src.name} is {with_article(kind.label)}, which Pillow cannot read on this computer.",
                                     source=src.name, fix="convert it to JPEG or PNG." + extra)
    label = f"{with_article(kind.label)} file Pillow cannot decode" if kind else "not an image format Pillow can read"
    return UnsupportedImageError(f"{src.name} is {label} (it starts with {data[:8]!r}).", source=src.name,
                                 fix=ADVICE_CONVERT + (" " + src.hint if src.hint else ""))


def load_image(source: ImageSource, *, timeout: float = DOWNLOAD_TIMEOUT) -> Image.Image:
    """Open any image source as a Pillow image: decoded, EXIF-oriented, first frame, clear errors.

    Metadata is left in ``.info`` (use :func:`prepare_image` to send it clean). An animated image warns and
    gives its first frame; a caller's Pillow image is copied, never modified.

    >>> from PIL import Image
    >>> load_image(Image.new("RGB", (30, 20))).size
    (30, 20)

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    src = read_source(source, timeout)
    decoded = decode(src)
    warn_if_animated(src, decoded)
    return ImageOps.exif_transpose(decoded.image)


def warn_if_animated(src: Source, decoded: Decoded) -> str | None:
    """Warn that only one frame of a multi-frame image is used; the note to keep, or None for a still image."""
    if decoded.frames <= 1:
        return None
    kind = {"GIF": "animated GIF", "PNG": "animated PNG", "WEBP": "animated WEBP", "TIFF": "multi-page TIFF"}.get(
        decoded.format or "", f"multi-frame {decoded.format} image")
    which = "the first frame" if src.image is None else f"frame {src.image.tell()} (the frame selected)"
    warnings.warn(f"{src.name} is an {kind} with {decoded.frames} frames; the API takes still images, so only "
                  f"{which} is sent. To show the model several moments, pass the frames you want as separate "
                  "images.", UserWarning, stacklevel=3)
    return f"{kind} with {decoded.frames} frames: kept {which} only"

