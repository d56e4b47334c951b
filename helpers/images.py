"""Turn any image a learner has into something a vision model accepts: small, clean and correctly labelled.

The naive way (the source notebooks) base64-encodes the file and labels it ``image/jpeg`` whatever it is.
That sends the camera's GPS position and serial numbers along with the picture, sends a sideways photo when
the camera stored the rotation in EXIF, uploads 12 megapixels the model shrinks to 2048 x 1536 (or much less)
anyway, and mislabels PNGs. :func:`prepare_image` does it properly:

1. **Read** a path, bytes, a Pillow image, a ``data:`` URL or an ``http(s)`` URL (downloaded with a timeout).
2. **Sniff** the real format from the first bytes (magic numbers), never from the file name.
3. **Decode** with Pillow; clear errors (``helpers.errors``) for empty, truncated, non-image, SVG, HEIC...
   files, and for decompression bombs. An animated GIF/PNG/WEBP keeps its first frame, with a warning.
4. **Orient** by the EXIF orientation tag (``PIL.ImageOps.exif_transpose``), then **strip all metadata**:
   EXIF (GPS, camera, dates), XMP, IPTC, comments, PNG text chunks, extra MPF images. An ICC colour profile
   that is not sRGB is *converted* to sRGB (the colours stay right); an sRGB one is dropped.
5. **Resize** (LANCZOS) to :func:`helpers.tokens.scaled_size`, the size the model actually looks at for this
   ``detail`` and model, never upscaling. The token count is exactly the same; the upload is smaller.
6. **Encode** (see "Which format is sent") and check the 20 MB per-image limit on the result.

Which format is sent (design decisions):

* A PNG, JPEG, WEBP or still GIF that needs no rotation, colour or mode conversion keeps its pixels
  byte-for-byte: its metadata is cut out of the file container (JPEG segments, PNG/WEBP chunks) without
  decoding and re-encoding, so a JPEG loses no quality. Without metadata it is sent unchanged. When it is
  also larger than the model's size, it is resized and re-encoded, unless the re-encoded file would be
  *bigger* than the cleaned original (a flat palette diagram, say): the model then shrinks it itself,
  same tokens, fewer bytes.
* Re-encoding keeps the kind of compression the source had: JPEG (and AVIF/HEIC photos without alpha) ->
  JPEG at quality 90 (or the source's own quantization tables when they were coarser, so a quality-75
  photo is not inflated); WEBP -> WEBP (lossless if the source was lossless, else quality 90); everything
  else (PNG, GIF, BMP, TIFF, ICO, 16-bit, anything with alpha) -> PNG, lossless. We never add JPEG
  artefacts to an image that had none.
* Re-encoded pixels are 8-bit ``L``, ``RGB`` or ``RGBA``: palette, 1-bit, LA, CMYK and 16-bit images are
  converted (16-bit values are scaled to 8 bits, not clipped).

Taught in notebooks/02_local_images_base64.ipynb.

>>> from PIL import Image
>>> prepared = prepare_image(Image.new("RGB", (4000, 3000), "navy"), detail="low", model="gpt-4o")
>>> prepared.width, prepared.height, prepared.mime_type
(512, 384, 'image/png')
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageChops, ImageOps, UnidentifiedImageError

from helpers import models, tokens
from helpers.errors import (
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    NetworkError,
    UnknownModelError,
    UnsupportedImageError,
)
from helpers.tokens import check_detail

# --- facts and limits --------------------------------------------------------------------------------------
# OpenAI "Images and vision" guide, section "Image input requirements"
# (https://developers.openai.com/api/docs/guides/images-vision, formerly platform.openai.com/docs/guides/
# images-vision; checked 2026-11-21):
# file types PNG, JPEG, WEBP and non-animated GIF; "Up to 20MB per image"; up to 50 MB of image bytes and
# 500 images per request.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
SUPPORTED_MIME = ("image/png", "image/jpeg", "image/webp", "image/gif")

# Our own choices (not provider facts):
JPEG_QUALITY = 90                       # re-encoded JPEGs: visually lossless for photos, far smaller than PNG
WEBP_QUALITY = 90                       # re-encoded lossy WEBPs
DOWNLOAD_TIMEOUT = 30.0                 # seconds, for connecting and for each read of an http(s) download
MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024  # refuse to download more than this (a photo to shrink may exceed 20 MB)
USER_AGENT = "gpt-vision-course-helpers/0.1 (educational notebooks; python-requests)"

ImageSource = str | os.PathLike | bytes | Image.Image   # str: a path, an http(s) URL or a data: URL

_MIME_BY_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "WEBP": "image/webp",
                   "GIF": "image/gif"}
_LOSSY_PHOTO_FORMATS = {"JPEG", "MPO", "AVIF", "HEIF", "HEIC"}
_SAFE_MODES = {"PNG": {"1", "L", "LA", "P", "RGB", "RGBA"}, "JPEG": {"L", "RGB"}, "MPO": {"L", "RGB"},
               "WEBP": {"RGB", "RGBA"}, "GIF": {"L", "P"}}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif",
                   ".avif", ".ico"}
_ADVICE_CONVERT = "Open it in an image editor (or Preview/Paint) and save it as PNG or JPEG, then pass that file."

# ITU-T T.81 (the JPEG standard), Annex K, Table K.1: the luminance quantization table that libjpeg scales
# by "quality" (jcparam.c: scale = 200 - 2*quality for quality >= 50). Used to tell whether a source JPEG was
# saved coarser than JPEG_QUALITY, in which case re-encoding reuses its own tables.
_ANNEX_K_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
_QUALITY_LUMA_SUM = sum(min(255, max(1, (q * (200 - 2 * JPEG_QUALITY) + 50) // 100)) for q in _ANNEX_K_LUMINANCE)


# --- the result --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedImage:
    """An image ready to send, with what was done to it (``notes``) for the notebooks to show.

    ``original_width``/``original_height`` are the size as displayed (after the EXIF orientation), so they
    compare directly with ``width``/``height``. ``original_bytes`` is the size of the file, download or
    data-URL payload; for an in-memory Pillow image, the size of its raw pixel buffer. ``model`` and
    ``family`` are what the size was computed for; ``tokens`` is what the image costs that model.

    >>> from PIL import Image
    >>> p = prepare_image(Image.new("RGB", (64, 32), "red"), model="gpt-4o")
    >>> p.mime_type, p.width, p.height, p.tokens, p.data_url[:22]
    ('image/png', 64, 32, 255, 'data:image/png;base64,')
    """

    data: bytes = field(repr=False)
    mime_type: str
    width: int
    height: int
    original_width: int
    original_height: int
    original_bytes: int
    source_name: str
    notes: tuple[str, ...] = ()
    detail: str = "auto"
    model: str = ""
    family: str | None = None

    @cached_property
    def data_url(self) -> str:
        """``data:<mime>;base64,<bytes>``: what goes into ``image_url.url``."""
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def tokens(self) -> int:
        """Input tokens this image costs ``model`` at ``detail`` (the same as the original would)."""
        return tokens.image_tokens(self.width, self.height, self.detail, self.model, self.family)

    def summary(self) -> str:
        """A short deterministic report: sizes and bytes before and after, then one line per note.

        >>> from PIL import Image
        >>> print(prepare_image(Image.new("L", (900, 300)), "low", "gpt-4o").summary())
        Pillow image (900×300 L): 900×300, 263.7 KB → 512×171 image/png, 163 bytes (gpt-4o, detail='low', 85 tokens)
          - resized 900×300 → 512×171 (what gpt-4o looks at with detail='low')
          - encoded the in-memory image as PNG (lossless)
        """
        head = (f"{self.source_name}: {self.original_width}×{self.original_height}, "
                f"{_human_bytes(self.original_bytes)} → {self.width}×{self.height} {self.mime_type}, "
                f"{_human_bytes(len(self.data))} ({self.model}, detail={self.detail!r}, {self.tokens} tokens)")
        return "\n".join([head, *(f"  - {note}" for note in self.notes)])


# --- sniffing ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Kind:
    label: str            # "PNG", "HEIC photo", "SVG drawing"; with its article when not an image ("a PDF document")
    mime: str | None      # an image MIME type, or None for things that are not images (text, PDF, HTML)


def _sniff(data: bytes) -> _Kind | None:
    """What the first bytes say the data is (magic numbers from each format's specification)."""
    head = bytes(data[:1024])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):                       # PNG spec, section 5.2
        return _Kind("PNG", "image/png")
    if head.startswith(b"\xff\xd8\xff"):                            # JPEG: SOI marker, then a marker
        return _Kind("JPEG", "image/jpeg")
    if head[:6] in (b"GIF87a", b"GIF89a"):                          # GIF89a spec, "Header"
        return _Kind("GIF", "image/gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":               # WebP container spec (RIFF)
        return _Kind("WEBP", "image/webp")
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (
            12, 16, 40, 52, 56, 64, 108, 124):                      # BMP: "BM" + a known DIB header size
        return _Kind("BMP", "image/bmp")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF / BigTIFF byte-order + 42/43
        return _Kind("TIFF", "image/tiff")
    if head[4:8] == b"ftyp":                                        # ISO base media file (HEIF, AVIF)
        box = int.from_bytes(head[:4], "big")
        brands = {head[i:i + 4] for i in range(8, min(max(box, 16), len(head)) - 3, 4)}
        if brands & {b"avif", b"avis"}:
            return _Kind("AVIF image", "image/avif")
        if brands & {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}:
            return _Kind("HEIC photo", "image/heic")
        if brands & {b"mif1", b"msf1"}:
            return _Kind("HEIF image", "image/heif")
        return _Kind("a video (MP4/MOV)", None)                    # isom, mp41, mp42, qt, M4V, 3gp...
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):  # JPEG 2000 (jp2, j2k)
        return _Kind("JPEG 2000", "image/jp2")
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):          # JPEG XL
        return _Kind("JPEG XL image", "image/jxl")
    if head[:4] == b"\x00\x00\x01\x00" and head[4:6] != b"\x00\x00":  # ICO: reserved 0, type 1, count > 0
        return _Kind("ICO", "image/x-icon")
    if head.startswith(b"8BPS"):
        return _Kind("Photoshop (PSD)", "image/vnd.adobe.photoshop")
    if head.startswith(b"%PDF-"):
        return _Kind("a PDF document", None)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith((b"<?xml", b"<!doctype svg", b"<!--")) and b"<svg" in text):
        return _Kind("SVG drawing", "image/svg+xml")
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:200]:
        return _Kind("an HTML web page", None)
    try:
        decoded: str | None = head.decode("utf-8")
    except UnicodeDecodeError as err:     # a character cut by the 1024-byte window is still text
        decoded = head[:err.start].decode("utf-8") if err.start >= len(head) - 3 else None
    if decoded and all(ch.isprintable() or ch in "\t\r\n\f" for ch in decoded):
        return _Kind("text", None)
    return None


def sniff_mime(data: bytes) -> str | None:
    """The image MIME type the bytes really are (from their magic numbers, not a file name), or None.

    It also names image formats the API does not take (``image/bmp``, ``image/tiff``, ``image/heic``,
    ``image/avif``, ``image/svg+xml``...): check ``sniff_mime(data) in SUPPORTED_MIME`` to know whether the
    bytes can be sent as they are. Text, HTML, PDF, unknown or empty data give None.

    >>> sniff_mime(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))
    'image/png'
    >>> sniff_mime(b"hello") is None
    True

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    kind = _sniff(data)
    return kind.mime if kind else None


# --- reading the source ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Source:
    name: str                          # for messages: the path or URL as given, or a description
    short_name: str                    # for PreparedImage.source_name: file name, URL, or description
    data: bytes | None = None          # the encoded bytes (None for a Pillow image)
    image: Image.Image | None = None   # a caller's Pillow image (never modified)
    hint: str = ""                     # extra advice for errors (downloads)


def is_http_url(text: str) -> bool:
    """True for an http(s) URL, which is passed to the provider as it is (the provider downloads it)."""
    return bool(re.match(r"https?://", text, re.IGNORECASE))


def _a(label: str) -> str:
    """The label with its indefinite article ("an AVIF image", "a PNG")."""
    return ("an " if label[:1] in "AEIOU" else "a ") + label


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_source(source: Any, timeout: float) -> _Source:
    if isinstance(source, Image.Image):
        desc = f"Pillow image ({source.width}×{source.height} {source.mode})"
        return _Source(desc, desc, image=source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        desc = f"the given bytes ({len(data)} bytes)"
        return _Source(desc, "bytes", data=data)
    if isinstance(source, str) and source[:5].lower() == "data:":
        mime_and_data = decode_data_url(source)
        name = f"data URL ({_shorten(source, 40)})"
        return _Source(name, f"data URL ({mime_and_data[0]})", data=mime_and_data[1])
    if isinstance(source, str) and is_http_url(source):
        return _Source(_shorten(source, 200), _shorten(source), data=_download(source, timeout),
                       hint=_DOWNLOAD_ADVICE)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        _refuse_base64_text(path)
        return _Source(_shorten(path, 200), Path(path).name, data=_read_path(path))
    raise TypeError(f"Cannot read an image from a {type(source).__name__}: pass a file path, bytes, "
                    "a Pillow image, an http(s) URL or a data: URL.")


def _refuse_base64_text(text: str) -> None:
    """A long run of base64 passed as a "path" is a common slip (the output of encode_image)."""
    if len(text) > 200 and re.fullmatch(r"[A-Za-z0-9+/=\s]+", text):
        raise UnsupportedImageError(
            f"The text given as a path is {len(text)} characters of base64, not a file path.",
            source="base64 text",
            fix="pass the file path itself, or wrap the base64 text in a data URL: "
                "f'data:image/jpeg;base64,{text}' (use the image's real type).")


def _read_path(path: str) -> bytes:
    """The bytes of a file, with errors that say what to do."""
    shown = _shorten(path, 200)
    target = Path(os.path.expanduser(path))
    if target.is_dir():
        raise ImageNotFoundError(f"{shown!r} is a folder, not an image file.", source=shown,
                                 fix="pass the path of one image inside it (e.g. 'images/photo.jpg').")
    try:
        return target.read_bytes()
    except FileNotFoundError as err:
        raise ImageNotFoundError(
            f"There is no file at {shown!r}.", source=shown,
            fix="check the spelling and the folder: a relative path starts from the folder Python runs in "
                "(a notebook's own folder), so an image next to the notebooks is '../images/NAME'.") from err
    except PermissionError as err:
        raise ImageError(f"{shown!r} cannot be read: permission denied.", source=shown,
                         fix="check the file's permissions, or copy it somewhere you own.") from err
    except OSError as err:
        raise ImageError(f"{shown!r} cannot be read ({err.strerror or err}).", source=shown,
                         fix="check that the disk or network share is available, then try again.") from err


_DOWNLOAD_ADVICE = ("The site may refuse automated downloads: open the URL in a browser, save the image, and "
                    "pass the file path instead (or give the URL to image_part, so the provider fetches it).")


def _download(url: str, timeout: float) -> bytes:
    """GET an image with a timeout and a size cap; network trouble becomes NetworkError/ImageNotFoundError."""
    import requests

    shown = _shorten(url, 200)
    try:
        with requests.get(url, timeout=timeout, stream=True, headers={"User-Agent": USER_AGENT}) as response:
            if response.status_code in (404, 410):
                raise ImageNotFoundError(f"Downloading {shown} failed: HTTP {response.status_code} "
                                         f"({response.reason}), there is no image at that address.",
                                         source=shown, fix="check the URL. " + _DOWNLOAD_ADVICE)
            if response.status_code >= 400:
                raise NetworkError(f"Downloading {shown} failed: HTTP {response.status_code} ({response.reason}).",
                                   status=response.status_code, fix=_DOWNLOAD_ADVICE)
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_content(chunk_size=1 << 16):
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise ImageTooLargeError(
                        f"{shown} is larger than {_human_bytes(MAX_DOWNLOAD_BYTES)}; the download was stopped.",
                        source=shown, fix="download a smaller version of the image. " + _DOWNLOAD_ADVICE)
                chunks.append(chunk)
            return b"".join(chunks)
    except requests.Timeout as err:
        raise NetworkError(f"Downloading {shown} timed out after {timeout:g} s.",
                           fix="try again later, or pass a larger timeout=. " + _DOWNLOAD_ADVICE) from err
    except requests.RequestException as err:
        raise NetworkError(f"Downloading {shown} failed: {type(err).__name__} (no connection to the site).",
                           fix="check the address and your internet connection. " + _DOWNLOAD_ADVICE) from err


# --- data URLs ---------------------------------------------------------------------------------------------

_DATA_URL = re.compile(r"data:(?P<mime>[^;,]*)(?P<params>(?:;[^;,]*)*?)(?P<b64>;base64)?,(?P<payload>.*)",
                       re.IGNORECASE | re.DOTALL)


def decode_data_url(url: str) -> tuple[str, bytes]:
    """Check and decode a ``data:<mime>;base64,...`` URL: ``(real MIME type, image bytes)``.

    The MIME type returned is the one the bytes really are (sniffed), which may differ from the one the URL
    declares. Raises :class:`~helpers.errors.UnsupportedImageError` for a URL that is not a data URL, not
    base64, empty, or not an image. Used by the offline server too.

    >>> decode_data_url("data:image/png;base64,iVBORw0KGgoAAAAA")
    ('image/png', b'\\x89PNG\\r\\n\\x1a\\n\\x00\\x00\\x00\\x00')

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    shown = f"data URL ({_shorten(url, 40)})" if isinstance(url, str) else "data URL"
    example = "a data URL looks like data:image/png;base64,iVBORw0KGgo... (helpers.images.to_data_url makes one)"
    match = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        given = _shorten(url, 40) if isinstance(url, str) else type(url).__name__
        raise UnsupportedImageError(f"{given!r} is not a data URL.", source=given, fix=example)
    if not match.group("b64"):
        raise UnsupportedImageError(f"The {shown} is not base64-encoded (';base64,' is missing).",
                                    source=shown, fix=example)
    payload = re.sub(r"\s+", "", match.group("payload"))
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as err:
        raise UnsupportedImageError(f"The {shown} does not contain valid base64 ({err}).", source=shown,
                                    fix="encode the file's bytes with base64.b64encode, or use to_data_url.") from err
    if not data:
        raise UnsupportedImageError(f"The {shown} is empty.", source=shown, fix=example)
    kind = _sniff(data)
    if kind is None or kind.mime is None:
        what = kind.label if kind else "data that is not a known image format"
        raise UnsupportedImageError(f"The {shown} holds {what}, not an image.", source=shown,
                                    fix="put the bytes of a PNG, JPEG, WEBP or GIF file in it.")
    return kind.mime, data


# --- decoding ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Decoded:
    image: Image.Image                 # first frame, loaded, as stored (not yet oriented); owned by us
    format: str | None                 # Pillow's format name ("PNG", "JPEG", "MPO", "BMP"...) or None
    frames: int
    jpeg_qtables: Any = None           # a JPEG source's quantization tables, for re-encoding
    jpeg_sampling: int = -1            # a JPEG source's chroma subsampling (Pillow's code), -1 if unknown
    lossless_webp: bool = False        # a WEBP source stored losslessly (VP8L)


def _allowed_formats() -> tuple[str, ...]:
    # Every format Pillow reads except EPS, whose decoder runs Ghostscript on the file.
    Image.init()
    return tuple(name for name in Image.ID if name != "EPS")


def _bomb_error(src: _Source, err: BaseException) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{src.name} has too many pixels to open safely (Pillow's decompression-bomb protection: {err}).",
        source=src.name,
        fix="if you trust the file, shrink it first in an image editor; a model never looks at more than a "
            "few megapixels anyway.")


def _jpeg_facts(image: Image.Image) -> tuple[Any, int]:
    if image.format not in ("JPEG", "MPO"):
        return None, -1
    from PIL import JpegImagePlugin
    return getattr(image, "quantization", None), JpegImagePlugin.get_sampling(image)


def _decode(src: _Source) -> _Decoded:
    """Open and fully decode the first frame; every failure becomes a course error naming the source."""
    if src.image is not None:
        return _decode_pillow(src)
    data = src.data or b""
    if not data:
        raise UnsupportedImageError(f"{src.name} is empty (0 bytes).", source=src.name,
                                    fix=("re-save or re-download the image. " + src.hint).strip())
    kind = _sniff(data)
    if kind is not None and kind.mime == "image/svg+xml":
        raise UnsupportedImageError(
            f"{src.name} is an SVG drawing (vector graphics); the API takes only PNG, JPEG, WEBP and GIF.",
            source=src.name, fix="export it to PNG (Inkscape: File > Export; or cairosvg.svg2png), then pass the PNG.")
    image: Image.Image | None = None
    try:
        image = Image.open(io.BytesIO(data), formats=_allowed_formats())
        frames = _frame_count(image)
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
        raise UnsupportedImageError(f"{src.name} is {_a(label)} file that is {state}: {err}.", source=src.name,
                                    fix=("re-download or re-export the image; an interrupted download or copy "
                                         "often causes this. " + src.hint).strip()) from err
    tables, sampling = _jpeg_facts(image)
    return _Decoded(image, image.format, frames, tables, sampling, _webp_is_lossless(data))


def _decode_pillow(src: _Source) -> _Decoded:
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
    return _Decoded(image, given.format, frames, tables, sampling)


def _frame_count(image: Image.Image) -> int:
    if image.format == "MPO":          # a camera's extra pictures (depth map, stereo pair), not an animation
        return 1
    return int(getattr(image, "n_frames", 1) or 1)


def _unreadable(src: _Source, kind: _Kind | None, data: bytes) -> UnsupportedImageError:
    """The error for bytes Pillow cannot open: not an image at all, or a format this Pillow cannot read."""
    if kind is not None and kind.mime is None:
        ext = Path(src.short_name).suffix.lower()
        named = f" (its name ends in {ext}, but its bytes are not an image)" if ext in _IMAGE_SUFFIXES else ""
        fix = {"a PDF document": "export the page as PNG (e.g. 'pdftoppm -png file.pdf page'), then pass the PNG.",
               "a video (MP4/MOV)": "sample still frames with helpers.video.sample_frames(...) and send those.",
               "an HTML web page": ("the address gave a web page, not the image file. " + _DOWNLOAD_ADVICE
                                    if src.hint else "save the image itself (in a browser: right-click it > "
                                    "Save image as...), not the web page around it.")}.get(
            kind.label, ("pass a PNG, JPEG, WEBP or GIF file. " + src.hint).strip())
        return UnsupportedImageError(f"{src.name} contains {kind.label}, not an image{named}.", source=src.name,
                                     fix=fix)
    if kind is not None and kind.mime in ("image/heic", "image/heif", "image/avif", "image/jxl", "image/jp2"):
        extra = (" On an iPhone, Settings > Camera > Formats > Most Compatible saves JPEGs; or "
                 "pip install pillow-heif and call pillow_heif.register_heif_opener() once."
                 if kind.mime in ("image/heic", "image/heif") else "")
        return UnsupportedImageError(f"{src.name} is {_a(kind.label)}, which Pillow cannot read on this computer.",
                                     source=src.name, fix="convert it to JPEG or PNG." + extra)
    label = f"{_a(kind.label)} file Pillow cannot decode" if kind else "not an image format Pillow can read"
    return UnsupportedImageError(f"{src.name} is {label} (it starts with {data[:8]!r}).", source=src.name,
                                 fix=_ADVICE_CONVERT + (" " + src.hint if src.hint else ""))


def load_image(source: ImageSource, *, timeout: float = DOWNLOAD_TIMEOUT) -> Image.Image:
    """Open any image source as a Pillow image: decoded, EXIF-oriented, first frame, clear errors.

    Metadata is left in ``.info`` (use :func:`prepare_image` to send it clean). An animated image warns and
    gives its first frame; a caller's Pillow image is copied, never modified.

    >>> from PIL import Image
    >>> load_image(Image.new("RGB", (30, 20))).size
    (30, 20)

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    src = _read_source(source, timeout)
    decoded = _decode(src)
    _warn_if_animated(src, decoded)
    return ImageOps.exif_transpose(decoded.image)


def _warn_if_animated(src: _Source, decoded: _Decoded) -> str | None:
    if decoded.frames <= 1:
        return None
    kind = {"GIF": "animated GIF", "PNG": "animated PNG", "WEBP": "animated WEBP", "TIFF": "multi-page TIFF"}.get(
        decoded.format or "", f"multi-frame {decoded.format} image")
    which = "the first frame" if src.image is None else f"frame {src.image.tell()} (the frame selected)"
    warnings.warn(f"{src.name} is an {kind} with {decoded.frames} frames; the API takes still images, so only "
                  f"{which} is sent. To show the model several moments, pass the frames you want as separate "
                  "images.", UserWarning, stacklevel=3)
    return f"{kind} with {decoded.frames} frames: kept {which} only"


# --- metadata, orientation and colour ------------------------------------------------------------------------

_ORIENTATION_VERBS = {2: "mirrored left-right", 3: "rotated 180°", 4: "flipped upside down",
                      5: "transposed (mirrored along the diagonal)", 6: "rotated 90° clockwise",
                      7: "transversed (mirrored along the other diagonal)", 8: "rotated 90° counter-clockwise"}


def _safe_exif(image: Image.Image) -> Image.Exif | None:
    try:
        return image.getexif()
    except Exception:  # damaged EXIF blocks raise assorted errors; the block is dropped anyway
        return None


def _orientation(exif: Image.Exif | None) -> int:
    value = exif.get(ExifTags.Base.Orientation, 1) if exif is not None else 1
    return value if isinstance(value, int) and value in _ORIENTATION_VERBS else 1


def _describe_exif(image: Image.Image, exif: Image.Exif | None) -> str | None:
    raw = image.info.get("exif") or image.info.get("Raw profile type exif")
    if exif is None:
        return "EXIF (unreadable)" if raw else None
    details: list[str] = []
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:
        gps, exif_ifd = {}, {}
    if gps:
        details.append("GPS location")
    if ExifTags.Base.Make in exif or ExifTags.Base.Model in exif:
        details.append("camera make/model")
    if ExifTags.Base.DateTime in exif or ExifTags.Base.DateTimeOriginal in exif_ifd:
        details.append("date/time")
    if ExifTags.Base.Artist in exif or ExifTags.Base.Copyright in exif:
        details.append("author/copyright")
    if not (raw or details or exif_ifd or ExifTags.Base.Orientation in exif):
        return None
    return "EXIF" + (f" ({', '.join(details)})" if details else "")


def _metadata_found(image: Image.Image, exif: Image.Exif | None) -> list[str]:
    """Human names of the metadata in an opened image (the ICC profile is reported separately)."""
    info = image.info
    found: list[str] = []
    described = _describe_exif(image, exif)
    if described:
        found.append(described)
    if info.get("xmp") or info.get("XML:com.adobe.xmp"):
        found.append("XMP")
    if info.get("photoshop"):
        found.append("IPTC/Photoshop data")
    if info.get("comment"):
        found.append("comment")
    text_keys = sorted(set(getattr(image, "text", None) or {}) - {"XML:com.adobe.xmp", "Raw profile type exif"})
    if text_keys:
        found.append(f"text chunks ({', '.join(_shorten(k, 20) for k in text_keys[:4])}"
                     f"{', …' if len(text_keys) > 4 else ''})")
    if "mp" in info or "mpoffset" in info:
        found.append("extra pictures (MPF)")
    return found


def _srgb_profile() -> Any:
    from PIL import ImageCms
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _icc_plan(image: Image.Image, icc: bytes | None) -> tuple[str, str, str]:
    """What to do with an embedded ICC profile: ("none" | "drop" | "convert", its name, how to report a drop)."""
    if not icc:
        return "none", "", ""
    try:
        from PIL import ImageCms
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        name = (ImageCms.getProfileDescription(profile) or "").strip() or "unnamed"
    except Exception:   # ImportError (Pillow without littleCMS) or a damaged profile
        return "drop", "unreadable", "an unreadable ICC profile"
    if image.mode == "CMYK":
        return "convert", name, ""
    if image.mode not in ("RGB", "RGBA"):
        return "drop", name, f"ICC profile '{name}' ({image.mode} pixels are sent as they are)"
    # Behaviour, not the name, decides: push a colour cube through the profile and see if sRGB comes out.
    probe = Image.new("RGB", (27, 1))
    probe.putdata([(r, g, b) for r in (0, 128, 255) for g in (0, 128, 255) for b in (0, 128, 255)])
    try:
        out = ImageCms.profileToProfile(probe, profile, _srgb_profile(), outputMode="RGB",
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    except Exception:   # a profile for another colour space than the image's
        return "drop", name, f"ICC profile '{name}' (it does not fit RGB pixels)"
    assert out is not None
    worst = max(high for _low, high in ImageChops.difference(probe, out).getextrema())
    if worst <= 2:
        return "drop", name, f"ICC profile '{name}' (already sRGB)"
    return "convert", name, ""


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    from PIL import ImageCms
    mode = "RGBA" if image.mode == "RGBA" else "RGB"
    out = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _srgb_profile(),
                                    outputMode=mode, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    assert out is not None
    return out


def _normalise_mode(image: Image.Image) -> tuple[Image.Image, str | None]:
    """8-bit L, RGB or RGBA pixels, which every decoder reads; a note when something changed."""
    mode = image.mode
    transparency = "transparency" in image.info
    if mode == "RGBA" or (mode in ("L", "RGB") and not transparency):
        return image, None
    try:
        if mode in ("LA", "La", "PA", "RGBa") or (transparency and mode in ("1", "L", "P", "RGB")):
            return image.convert("RGBA"), f"converted {mode} pixels with transparency to RGBA"
        if mode == "1":
            return image.convert("L"), "converted 1-bit black-and-white pixels to 8-bit greyscale (L)"
        if mode == "P":
            return image.convert("RGB"), "converted palette (P) pixels to RGB"
        if mode.startswith("I") or mode == "F":
            return _to_8bit_grey(image), f"converted {mode} pixels (more than 8 bits) to 8-bit greyscale (L)"
        return image.convert("RGB"), f"converted {mode} pixels to RGB"
    except ValueError as err:
        raise UnsupportedImageError(f"Pixels in colour mode {mode} cannot be converted to RGB ({err}).",
                                    fix=_ADVICE_CONVERT) from err


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer or float greyscale to 0..255 (Pillow's own convert('L') clips instead)."""
    import numpy as np

    values = np.asarray(image).astype(np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode.startswith("I;16") or (image.mode == "I" and low >= 0 and 255 < high <= 65535):
        scaled = values / 257.0                           # the exact 16-bit -> 8-bit mapping (65535 -> 255)
    elif image.mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    elif low >= 0 and high <= 255:
        scaled = values
    else:
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


# --- lossless metadata removal from the file container (pixels untouched) ------------------------------------

def _strip_jpeg(data: bytes) -> bytes | None:
    """Drop APP1..APP15 (EXIF, XMP, ICC, IPTC, MPF...) except Adobe APP14, comments, and all bytes after EOI.

    APP0 JFIF is rewritten without its thumbnail. Returns None if the structure is not as expected.
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    out = bytearray(b"\xff\xd8")
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            return None
        while i < n and data[i] == 0xFF:      # fill bytes
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker == 0xD9:                    # EOI: anything after it (MPF pictures, junk) is dropped
            return bytes(out + b"\xff\xd9")
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += bytes((0xFF, marker))
            continue
        if i + 2 > n:
            return None
        length = int.from_bytes(data[i:i + 2], "big")
        if length < 2 or i + length > n:
            return None
        payload = data[i + 2:i + length]
        segment = bytes((0xFF, marker)) + data[i:i + length]
        i += length
        if marker == 0xDA:                    # start of scan: copy the entropy-coded data up to the next marker
            end = _scan_end(data, i)
            if end is None:
                return None
            out += segment + data[i:end]
            i = end
        elif marker == 0xE0:
            if payload.startswith(b"JFIF\x00") and len(payload) >= 12:
                out += b"\xff\xe0\x00\x10" + payload[:12] + b"\x00\x00"   # density kept, thumbnail dropped
        elif marker == 0xEE:
            if payload.startswith(b"Adobe"):  # colour-transform flag: needed to decode the pixels right
                out += segment
        elif 0xE1 <= marker <= 0xEF or marker == 0xFE:
            continue                          # APPn metadata and COM comments
        else:
            out += segment                    # SOFn, DHT, DQT, DRI, DNL...
    return None


def _scan_end(data: bytes, start: int) -> int | None:
    """Index of the first real marker after entropy-coded data (skipping FF00 stuffing and RSTn)."""
    j = start
    while True:
        k = data.find(b"\xff", j)
        if k < 0 or k + 1 >= len(data):
            return None
        following = data[k + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            j = k + 1 if following == 0xFF else k + 2
            continue
        return k


_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs", b"bKGD"}


def _strip_png(data: bytes) -> bytes | None:
    """Keep only the chunks that define pixels and colours; drop text, EXIF, ICC, time, private chunks."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    parts = [data[:8]]
    i = 8
    while i + 12 <= len(data):
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        end = i + 12 + length
        if end > len(data):
            return None
        if kind in _PNG_KEEP:
            parts.append(data[i:end])
        if kind == b"IEND":
            return b"".join(parts)
        i = end
    return None


def _strip_webp(data: bytes) -> bytes | None:
    """Drop ICCP, EXIF and XMP chunks (and clear their VP8X flags) from a still WEBP."""
    if not (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return None
    riff_end = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    parts: list[bytes] = []
    i = 12
    while i + 8 <= riff_end:
        fourcc = data[i:i + 4]
        size = int.from_bytes(data[i + 4:i + 8], "little")
        end = i + 8 + size + (size & 1)
        if i + 8 + size > riff_end:
            return None
        chunk = data[i:min(end, riff_end)]
        if fourcc == b"VP8X" and size >= 10:
            chunk = chunk[:8] + bytes((chunk[8] & ~(0x20 | 0x08 | 0x04) & 0xFF,)) + chunk[9:]
        if fourcc in (b"ANIM", b"ANMF"):
            return None
        if fourcc in (b"VP8X", b"VP8 ", b"VP8L", b"ALPH"):
            parts.append(chunk)
        i = end
    body = b"WEBP" + b"".join(parts)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


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


def _strip_metadata(data: bytes, decoded: _Decoded) -> bytes | None:
    """The source file without its metadata, pixels untouched (check with :func:`_is_clean`), or None."""
    fmt = decoded.format
    if fmt in ("JPEG", "MPO"):
        return _strip_jpeg(data)
    if fmt == "PNG":
        return _strip_png(data)
    if fmt == "WEBP":
        return _strip_webp(data)
    if fmt == "GIF":     # GIF blocks are not worth hand-parsing: Pillow rewrites the palette image losslessly
        if not _metadata_found(decoded.image, None) and "icc_profile" not in decoded.image.info:
            return data
        image = decoded.image.copy()
        return _encode(image, "GIF")
    return None


def _is_clean(data: bytes, decoded: _Decoded) -> bool:
    """Self-check of a container-stripped file: it decodes, same size and mode, and no metadata is left."""
    try:
        with Image.open(io.BytesIO(data)) as check:
            check.load()
            return (check.size == decoded.image.size and check.mode == decoded.image.mode
                    and not _metadata_found(check, _safe_exif(check)) and "icc_profile" not in check.info)
    except Exception:
        return False


# --- encoding ----------------------------------------------------------------------------------------------

def _output_format(source_format: str | None, mode: str) -> str:
    if source_format == "WEBP":
        return "WEBP"
    if source_format in _LOSSY_PHOTO_FORMATS and mode in ("L", "RGB"):
        return "JPEG"
    return "PNG"


def _jpeg_options(decoded: _Decoded) -> tuple[dict[str, Any], str]:
    tables = decoded.jpeg_qtables
    options: dict[str, Any] = {"optimize": True}
    if decoded.jpeg_sampling in (0, 1, 2):
        options["subsampling"] = decoded.jpeg_sampling
    if tables and 0 in tables and sum(tables[0]) > _QUALITY_LUMA_SUM:
        options["qtables"] = [list(tables[k]) for k in sorted(tables)][:2]
        return options, f"the source's own quantization tables, coarser than quality {JPEG_QUALITY}"
    options["quality"] = JPEG_QUALITY
    return options, f"quality {JPEG_QUALITY}"


def _encode(image: Image.Image, fmt: str, options: dict[str, Any] | None = None) -> bytes:
    """Encode an image we own, with no metadata (``info`` is cleared except transparency)."""
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    buffer = io.BytesIO()
    image.save(buffer, fmt, **(options or {}))
    return buffer.getvalue()


# --- preparing ---------------------------------------------------------------------------------------------

_check_detail = check_detail


def _resolve_model(model: str | None, family: str | None, notes: list[str]) -> tuple[str, str | None]:
    """The model name (``None`` -> the configured model) and the family to size unknown models by."""

    if model is None:
        model = models.configured_model()  # VISION_MODEL as setup() resolved it, else the course default
    try:
        tokens.model_cost(model, family)
    except UnknownModelError:
        if family is not None:
            raise
        message = (f"{model!r} is not in the token-cost tables, so the image is sized by the tile-family rules "
                   "(gpt-4o's); pass family='patch' to prepare_image if this model counts 32-px patches.")
        warnings.warn(message, UserWarning, stacklevel=3)
        notes.append(message)
        family = "tile"
    return model, family


def prepare_image(source: ImageSource, detail: str = "auto", model: str | None = None, *,
                  max_bytes: int = MAX_IMAGE_BYTES, timeout: float = DOWNLOAD_TIMEOUT,
                  family: str | None = None) -> PreparedImage:
    """Read, check, orient, strip, convert, resize and encode an image for ``model`` at ``detail``.

    ``model=None`` is the configured model (``VISION_MODEL``, else the course default). The result has exactly the
    token count of the original for that model and detail, no metadata, and the smallest size we can make
    at that token count. ``max_bytes`` is the per-image limit checked on the result (OpenAI: 20 MB).
    ``family`` sizes a model the cost tables do not know ("tile" or "patch"). Errors name the source:
    :class:`~helpers.errors.ImageNotFoundError`, :class:`~helpers.errors.UnsupportedImageError`,
    :class:`~helpers.errors.ImageTooLargeError`, :class:`~helpers.errors.NetworkError` (downloads).
    An animated image warns (``UserWarning``) and sends its first frame.

    >>> from PIL import Image
    >>> p = prepare_image(Image.new("RGB", (4032, 3024), "teal"), detail="high", model="gpt-4o")
    >>> (p.original_width, p.original_height), (p.width, p.height), p.notes[0]
    ((4032, 3024), (1024, 768), "resized 4032×3024 → 1024×768 (what gpt-4o looks at with detail='high')")

    Taught in notebooks/02_local_images_base64.ipynb.
    """

    _check_detail(detail)
    notes: list[str] = []
    model, family = _resolve_model(model, family, notes)
    src = _read_source(source, timeout)
    decoded = _decode(src)
    animated = _warn_if_animated(src, decoded)
    if animated:
        notes.append(animated)
    plan = _plan(src, decoded)
    width, height = plan.size
    target_w, target_h = tokens.scaled_size(width, height, detail, model, family)
    target = (min(target_w, width), min(target_h, height))       # never upscale

    data, (out_w, out_h), mime, more_notes = _produce(src, decoded, plan, target, model, detail)
    notes.extend(more_notes)
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"{src.name} is still {_human_bytes(len(data))} after preparation, over the "
            f"{_human_bytes(max_bytes)} per-image limit.", source=src.name,
            fix="use detail='low', crop the part that matters, or save it as JPEG before sending.")
    original_bytes = len(src.data) if src.data is not None else len(decoded.image.tobytes())
    return PreparedImage(data=data, mime_type=mime, width=out_w, height=out_h, original_width=width,
                         original_height=height, original_bytes=original_bytes, source_name=src.short_name,
                         notes=tuple(notes), detail=detail, model=model, family=family)


def _produce(src: _Source, decoded: _Decoded, plan: _Plan, target: tuple[int, int], model: str,
             detail: str) -> tuple[bytes, tuple[int, int], str, list[str]]:
    """The bytes to send, their size, MIME type and notes: the cleaned original or a re-encode, the smaller."""
    size = plan.size
    kept = _strip_metadata(src.data, decoded) if plan.can_keep_pixels and src.data is not None else None
    encoded = _reencode(decoded, plan, target, model, detail) if kept is None or target != size else None
    if kept is not None and (encoded is None or len(kept) <= len(encoded.data)) and _is_clean(kept, decoded):
        if kept == src.data:
            notes = ["sent unchanged: a supported format with no metadata"
                     + (", already the size the model uses" if target == size else "")]
        else:
            how = "rewrote the GIF palette image" if decoded.format == "GIF" else "cut it out of the file"
            notes = [f"removed metadata: {', '.join(plan.removed) or 'unused data'} ({how}; pixels unchanged, "
                     "no re-encoding loss)"]
        if target != size:
            notes.append(f"kept {size[0]}×{size[1]}: resizing to {target[0]}×{target[1]} made a bigger file; the "
                         "model shrinks it itself, at the same token count")
        return kept, size, _MIME_BY_FORMAT[decoded.format or ""], notes
    encoded = encoded or _reencode(decoded, plan, target, model, detail)
    notes = list(encoded.notes)
    if plan.removed:
        notes.append("removed metadata: " + ", ".join(plan.removed))
    return encoded.data, encoded.size, _MIME_BY_FORMAT[encoded.format], notes


@dataclass(frozen=True)
class _Encoded:
    data: bytes
    size: tuple[int, int]
    format: str                        # "PNG" | "JPEG" | "WEBP"
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Plan:
    """What the decoded image needs, decided before touching any pixel."""

    size: tuple[int, int]              # as displayed (after the EXIF orientation)
    orientation: int
    icc: bytes | None
    icc_action: str                    # "none" | "drop" | "convert"
    icc_name: str
    removed: tuple[str, ...]           # metadata that will not be sent
    sixteen_bit: bool
    format_name: str                   # "PNG", "JPEG" (MPO too), "BMP"... or "in-memory image"
    can_keep_pixels: bool              # a supported file whose pixels can be sent as they are


def _plan(src: _Source, decoded: _Decoded) -> _Plan:
    image = decoded.image
    exif = _safe_exif(image)
    orientation = _orientation(exif)
    icc = image.info.get("icc_profile") or None
    icc_action, icc_name, dropped = _icc_plan(image, icc)
    removed = [*_metadata_found(image, exif), *([dropped] if dropped else [])]
    size = image.size if orientation < 5 else (image.height, image.width)
    sixteen_bit = decoded.format == "PNG" and src.data is not None and src.data[24:25] == b"\x10"
    can_keep = (decoded.frames == 1 and orientation == 1 and icc_action != "convert" and not sixteen_bit
                and image.mode in _SAFE_MODES.get(decoded.format or "", ()))
    name = "JPEG" if decoded.format == "MPO" else (decoded.format or "in-memory image")
    return _Plan(size, orientation, icc, icc_action, icc_name, tuple(removed), sixteen_bit, name, can_keep)


def _reencode(decoded: _Decoded, plan: _Plan, target: tuple[int, int], model: str, detail: str) -> _Encoded:
    """Orient, convert colours and mode, resize and encode."""
    notes: list[str] = []
    image = decoded.image
    if plan.orientation != 1:
        image = ImageOps.exif_transpose(image)
        notes.append(f"{_ORIENTATION_VERBS[plan.orientation]} by EXIF orientation {plan.orientation}")
    if plan.icc_action == "convert" and plan.icc:
        try:
            image = _to_srgb(image, plan.icc)
            notes.append(f"converted colours from ICC profile '{plan.icc_name}' to sRGB")
        except Exception:   # littleCMS refused the profile: its colours are lost, the pixels are not
            notes.append(f"dropped ICC profile '{plan.icc_name}' (it could not be applied)")
    image, mode_note = _normalise_mode(image)
    if mode_note:
        notes.append(mode_note)
    elif plan.sixteen_bit:
        notes.append("converted 16-bit PNG pixels to 8 bits")
    if image.size != target:
        before = image.size
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        notes.append(f"resized {before[0]}×{before[1]} → {target[0]}×{target[1]} "
                     f"(what {model} looks at with detail={detail!r})")
    elif image is decoded.image:
        image = image.copy()        # _encode clears .info: never on the decoded original
    fmt = _output_format(decoded.format, image.mode)
    options, how = _save_options(decoded, fmt)
    if decoded.format is None:
        notes.append(f"encoded the in-memory image as {fmt} ({how})")
    elif plan.format_name != fmt:
        notes.append(f"converted {plan.format_name} to {fmt} ({how})")
    else:
        notes.append(f"re-encoded as {fmt} ({how})")
    return _Encoded(_encode(image, fmt, options), image.size, fmt, tuple(notes))


def _save_options(decoded: _Decoded, fmt: str) -> tuple[dict[str, Any], str]:
    if fmt == "JPEG":
        return _jpeg_options(decoded)
    if fmt == "WEBP":
        if decoded.lossless_webp:
            return {"lossless": True}, "lossless"
        return {"quality": WEBP_QUALITY}, f"quality {WEBP_QUALITY}"
    return {"compress_level": 6}, "lossless"


def _human_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count / (1024 * 1024):.1f} MB"


# --- the public conveniences -------------------------------------------------------------------------------

def encode_image(path: str | os.PathLike) -> str:
    """Plain base64 of a file's bytes, exactly like the source notebooks (the naive way, for comparison).

    No checks, no resizing, no metadata removal: the GPS position in a photo's EXIF goes along. Prefer
    :func:`to_data_url` / :func:`image_part`. A missing path raises ImageNotFoundError.

    >>> import tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp()) / "hi.bin"; _ = tmp.write_bytes(b"hi")
    >>> encode_image(tmp)
    'aGk='

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    data = _read_path(os.fsdecode(os.fspath(path)))   # the same bytes as open(path, "rb").read()
    return base64.b64encode(data).decode("utf-8")


def to_data_url(source: ImageSource, detail: str = "auto", model: str | None = None, *,
                max_bytes: int = MAX_IMAGE_BYTES, timeout: float = DOWNLOAD_TIMEOUT) -> str:
    """A ``data:`` URL of the prepared image (see :func:`prepare_image`); http(s) URLs are downloaded.

    >>> from PIL import Image
    >>> to_data_url(Image.new("RGB", (8, 8), "white"))[:22]
    'data:image/png;base64,'

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    return prepare_image(source, detail, model, max_bytes=max_bytes, timeout=timeout).data_url


def image_part(source: ImageSource | PreparedImage, detail: str = "auto", model: str | None = None) -> dict:
    """A Chat Completions content part: ``{"type": "image_url", "image_url": {"url": ..., "detail": ...}}``.

    An http(s) URL is passed through untouched (the provider downloads it); anything else is prepared
    for ``model`` at ``detail`` and sent as a data URL. A :class:`PreparedImage` is sent as it is.

    >>> image_part("https://example.com/cat.jpg", detail="low")
    {'type': 'image_url', 'image_url': {'url': 'https://example.com/cat.jpg', 'detail': 'low'}}

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    _check_detail(detail)
    if isinstance(source, PreparedImage):
        url = source.data_url
    elif isinstance(source, str) and is_http_url(source):
        url = source
    else:
        url = to_data_url(source, detail, model)
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}
