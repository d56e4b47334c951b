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

One concept, one module (issue 20 merged ``image_formats``, ``image_sources``, ``image_decode`` and
``image_encode`` into it), top to bottom: what an image *is* before decoding (the API's limits, sniffing the real
format from its first bytes, data URLs); reading a source into bytes safely (a local path is checked before it
is read: a folder, a device such as ``/dev/zero``, a FIFO is refused at once; downloads have a timeout and a byte
cap; every failure names the source, URL passwords redacted); decoding with Pillow (empty, truncated, SVG,
HEIC/AVIF files and decompression bombs get clear errors; EPS is never opened); writing what is sent (metadata cut
out of the container without decoding, or pixels oriented and re-encoded, :func:`plan_image` decides first);
and :func:`prepare_image` with its packaging (data URLs, content parts). What an image carries besides pixels
(EXIF orientation, metadata, ICC colour, mode) is :mod:`helpers.image_metadata`, which OCR and the offline
server's colour analysis also use; the course's own sample images are :mod:`helpers.course_images`.

Taught in notebooks/02_local_images_base64.ipynb.

>>> from PIL import Image
>>> prepared = prepare_image(Image.new("RGB", (4000, 3000), "navy"), detail="low", model="gpt-4o")
>>> prepared.width, prepared.height, prepared.mime_type
(512, 384, 'image/png')
>>> sniff_mime(b"GIF89a" + bytes(10))
'image/gif'
>>> output_format("JPEG", "RGB"), output_format("JPEG", "RGBA"), output_format("BMP", "RGB")
('JPEG', 'PNG', 'PNG')
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import stat
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from helpers import models, tokens
from helpers.errors import (
    ADVICE_CONVERT,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    NetworkError,
    UnknownModelError,
    UnsupportedImageError,
    shorten,
)
from helpers.image_metadata import (
    ORIENTATION_VERBS,
    icc_plan,
    metadata_found,
    normalise_mode,
    orientation_of,
    safe_exif,
    to_srgb,
)
from helpers.redaction import redact_url
from helpers.tokens import check_detail

__all__ = [
    "DOWNLOAD_ADVICE", "DOWNLOAD_TIMEOUT", "Decoded", "Encoded", "ImageSource", "JPEG_QUALITY", "Kind",
    "MAX_DOWNLOAD_BYTES", "MAX_IMAGE_BYTES", "MAX_INPUT_BYTES", "MIME_BY_FORMAT", "Plan", "PreparedImage",
    "SUPPORTED_MIME", "Source", "USER_AGENT", "WEBP_QUALITY", "decode", "decode_data_url", "encode",
    "encode_image", "human_bytes", "image_part", "is_clean", "is_http_url", "load_image", "output_format",
    "plan_image", "prepare_image", "read_path", "read_source", "redact_url", "reencode", "save_options",
    "shorten", "sniff", "sniff_mime", "strip_metadata", "to_data_url", "warn_if_animated", "with_article",
]


# ====================================================================================================
# image formats (formerly helpers/image_formats.py)
# ====================================================================================================

# --- facts and limits --------------------------------------------------------------------------------------
# OpenAI "Images and vision" guide, section "Image input requirements"
# (https://developers.openai.com/api/docs/guides/images-vision, formerly platform.openai.com/docs/guides/
# images-vision): file types PNG, JPEG, WEBP and non-animated GIF. The 2023-2025 guide said "Up to 20MB per
# image" (and 50 MB / 500 images per request); the guide checked 2026-12-02 gives no per-image byte limit, only
# 512 MB of payload and 1,500 images per request. Azure's vision how-to still says 20 MB per image (checked
# 2026-12-02), so the course keeps 20 MB per image: right on Azure, conservative on OpenAI (docs/FACTS.md §5).
MAX_IMAGE_BYTES = 20 * 1024 * 1024
SUPPORTED_MIME = ("image/png", "image/jpeg", "image/webp", "image/gif")

# Our own choices (not provider facts):
JPEG_QUALITY = 90                       # re-encoded JPEGs: visually lossless for photos, far smaller than PNG
WEBP_QUALITY = 90                       # re-encoded lossy WEBPs
DOWNLOAD_TIMEOUT = 30.0                 # seconds for a whole http(s) download (and at most for any one read)
MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024  # refuse to download more than this (a photo to shrink may exceed 20 MB)
USER_AGENT = "gpt-vision-course-helpers/0.1 (educational notebooks; httpx)"
#: The most bytes read from one local file or one download before deciding anything: a photo to shrink may
#: exceed the 20 MB per-image limit, a 10 GB file or a device such as /dev/zero is refused at once.
MAX_INPUT_BYTES = MAX_DOWNLOAD_BYTES



# --- small text helpers --------------------------------------------------------------------------------------

def with_article(label: str) -> str:
    """The label with its indefinite article.

    >>> with_article("AVIF image"), with_article("PNG")
    ('an AVIF image', 'a PNG')
    """
    return ("an " if label[:1] in "AEIOU" else "a ") + label


def human_bytes(count: int) -> str:
    """A byte count for people.

    >>> human_bytes(512), human_bytes(2048), human_bytes(3 * 1024 * 1024)
    ('512 bytes', '2.0 KB', '3.0 MB')
    """
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count / (1024 * 1024):.1f} MB"


# --- URLs ----------------------------------------------------------------------------------------------------

def is_http_url(text: str) -> bool:
    """True for an http(s) URL, which is passed to the provider as it is (the provider downloads it).

    >>> is_http_url("HTTPS://example.com/a.png"), is_http_url("images/a.png")
    (True, False)
    """
    return bool(re.match(r"https?://", text, re.IGNORECASE))


# --- sniffing ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """What the first bytes say: a label for messages, and the image MIME type (None when not an image)."""

    label: str            # "PNG", "HEIC photo", "SVG drawing"; with its article when not an image ("a PDF document")
    mime: str | None      # an image MIME type, or None for things that are not images (text, PDF, HTML)


def sniff(data: bytes) -> Kind | None:
    """What the first bytes say the data is (magic numbers from each format's specification).

    >>> sniff(b"%PDF-1.7")
    Kind(label='a PDF document', mime=None)
    """
    head = bytes(data[:1024])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):                       # PNG spec, section 5.2
        return Kind("PNG", "image/png")
    if head.startswith(b"\xff\xd8\xff"):                            # JPEG: SOI marker, then a marker
        return Kind("JPEG", "image/jpeg")
    if head[:6] in (b"GIF87a", b"GIF89a"):                          # GIF89a spec, "Header"
        return Kind("GIF", "image/gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":               # WebP container spec (RIFF)
        return Kind("WEBP", "image/webp")
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (
            12, 16, 40, 52, 56, 64, 108, 124):                      # BMP: "BM" + a known DIB header size
        return Kind("BMP", "image/bmp")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF / BigTIFF byte-order + 42/43
        return Kind("TIFF", "image/tiff")
    if head[4:8] == b"ftyp":                                        # ISO base media file (HEIF, AVIF)
        box = int.from_bytes(head[:4], "big")
        brands = {head[i:i + 4] for i in range(8, min(max(box, 16), len(head)) - 3, 4)}
        if brands & {b"avif", b"avis"}:
            return Kind("AVIF image", "image/avif")
        if brands & {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}:
            return Kind("HEIC photo", "image/heic")
        if brands & {b"mif1", b"msf1"}:
            return Kind("HEIF image", "image/heif")
        return Kind("a video (MP4/MOV)", None)                    # isom, mp41, mp42, qt, M4V, 3gp...
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):  # JPEG 2000 (jp2, j2k)
        return Kind("JPEG 2000", "image/jp2")
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):          # JPEG XL
        return Kind("JPEG XL image", "image/jxl")
    if head[:4] == b"\x00\x00\x01\x00" and head[4:6] != b"\x00\x00":  # ICO: reserved 0, type 1, count > 0
        return Kind("ICO", "image/x-icon")
    if head.startswith(b"8BPS"):
        return Kind("Photoshop (PSD)", "image/vnd.adobe.photoshop")
    if head.startswith(b"%PDF-"):
        return Kind("a PDF document", None)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith((b"<?xml", b"<!doctype svg", b"<!--")) and b"<svg" in text):
        return Kind("SVG drawing", "image/svg+xml")
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:200]:
        return Kind("an HTML web page", None)
    try:
        decoded: str | None = head.decode("utf-8")
    except UnicodeDecodeError as err:     # a character cut by the 1024-byte window is still text
        decoded = head[:err.start].decode("utf-8") if err.start >= len(head) - 3 else None
    if decoded and all(ch.isprintable() or ch in "\t\r\n\f" for ch in decoded):
        return Kind("text", None)
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
    kind = sniff(data)
    return kind.mime if kind else None


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
    shown = f"data URL ({shorten(url, 40)})" if isinstance(url, str) else "data URL"
    example = "a data URL looks like data:image/png;base64,iVBORw0KGgo... (helpers.images.to_data_url makes one)"
    match = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        given = shorten(url, 40) if isinstance(url, str) else type(url).__name__
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
    kind = sniff(data)
    if kind is None or kind.mime is None:
        what = kind.label if kind else "data that is not a known image format"
        raise UnsupportedImageError(f"The {shown} holds {what}, not an image.", source=shown,
                                    fix="put the bytes of a PNG, JPEG, WEBP or GIF file in it.")
    return kind.mime, data

# ====================================================================================================
# image sources (formerly helpers/image_sources.py)
# ====================================================================================================

ImageSource = str | os.PathLike | bytes | Image.Image   # str: a path, an http(s) URL or a data: URL

DOWNLOAD_ADVICE = ("The site may refuse automated downloads: open the URL in a browser, save the image, and "
                   "pass the file path instead (or give the URL to image_part, so the provider fetches it).")


@dataclass(frozen=True)
class Source:
    """An image source, read: names for messages, and the encoded bytes or the caller's Pillow image."""

    name: str                          # for messages: the path or URL as given (password redacted), or a description
    short_name: str                    # for PreparedImage.source_name: file name, URL, or description
    data: bytes | None = None          # the encoded bytes (None for a Pillow image)
    image: Image.Image | None = None   # a caller's Pillow image (never modified)
    hint: str = ""                     # extra advice for errors (downloads)


def read_source(source: Any, timeout: float) -> Source:
    """Read any :data:`ImageSource` (a URL is downloaded with ``timeout``); nothing is decoded yet.

    >>> read_source(b"\\x89PNG", 1.0).name
    'the given bytes (4 bytes)'
    """
    if isinstance(source, Image.Image):
        desc = f"Pillow image ({source.width}×{source.height} {source.mode})"
        return Source(desc, desc, image=source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        desc = f"the given bytes ({len(data)} bytes)"
        return Source(desc, "bytes", data=data)
    if isinstance(source, str) and source[:5].lower() == "data:":
        mime_and_data = decode_data_url(source)
        name = f"data URL ({shorten(source, 40)})"
        return Source(name, f"data URL ({mime_and_data[0]})", data=mime_and_data[1])
    if isinstance(source, str) and is_http_url(source):
        shown = redact_url(source)
        return Source(shorten(shown, 200), shorten(shown), data=_download(source, timeout), hint=DOWNLOAD_ADVICE)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        _refuse_base64_text(path)
        return Source(shorten(path, 200), Path(path).name, data=read_path(path))
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


_NOT_A_FILE = {stat.S_IFCHR: "a character device (like /dev/zero or a terminal)", stat.S_IFBLK: "a block device (a disk)",
               stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFSOCK: "a socket"}


def _os_error(err: OSError, shown: str) -> ImageError:
    if isinstance(err, FileNotFoundError):
        return ImageNotFoundError(
            f"There is no file at {shown!r}.", source=shown,
            fix="check the spelling and the folder: a relative path starts from the folder Python runs in "
                "(a notebook's own folder), so an image next to the notebooks is '../images/NAME'.")
    if isinstance(err, PermissionError):
        return ImageError(f"{shown!r} cannot be read: permission denied.", source=shown,
                          fix="check the file's permissions, or copy it somewhere you own.")
    return ImageError(f"{shown!r} cannot be read ({err.strerror or err}).", source=shown,
                      fix="check that the disk or network share is available, then try again.")


def _check_file(mode: int, size: int, shown: str, limit: int, fix: str | None) -> None:
    """Refuse a folder, a device, a FIFO or a socket, and a file over ``limit`` bytes: before any read."""
    if stat.S_ISDIR(mode):
        raise ImageNotFoundError(f"{shown!r} is a folder, not an image file.", source=shown,
                                 fix="pass the path of one image inside it (e.g. 'images/photo.jpg').")
    if not stat.S_ISREG(mode):
        what = _NOT_A_FILE.get(stat.S_IFMT(mode), "not a regular file")
        raise UnsupportedImageError(
            f"{shown!r} is {what}, not an image file; it was not read (it could never end, or wait forever).",
            source=shown, fix="pass the path of an image file (PNG, JPEG, WEBP or GIF), e.g. 'images/photo.jpg'.")
    if size > limit:
        raise ImageTooLargeError(
            f"{shown!r} is {human_bytes(size)}, more than the {human_bytes(limit)} the course reads from one "
            "image file; it was not read.", source=shown,
            fix=fix or "shrink or crop it in an image editor and save it as JPEG (a model never looks at more "
                       "than a few megapixels), then pass that file.")


def read_path(path: str, *, limit: int = MAX_INPUT_BYTES, fix: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, with errors that say what to do.

    The type and size are checked with ``os.stat`` before the file is opened, the open does not block (a FIFO
    swapped in meanwhile is caught by ``fstat`` on the open file), and at most ``limit + 1`` bytes are read, so
    ``/dev/zero``, a FIFO or a 10 GB file give a clear error at once. ``fix`` replaces the advice for a file
    over the limit.

    >>> read_path("/dev/zero")                          # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    helpers.errors.UnsupportedImageError: '/dev/zero' is a character device (like /dev/zero or a terminal), ...
    """
    shown = shorten(path, 200)
    target = os.path.expanduser(path)
    try:
        info = os.stat(target)
    except OSError as err:
        raise _os_error(err, shown) from err
    _check_file(info.st_mode, info.st_size, shown, limit, fix)
    try:
        handle = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as err:
        raise _os_error(err, shown) from err
    try:
        with os.fdopen(handle, "rb") as stream:
            opened = os.fstat(stream.fileno())        # the file actually opened (it may have been swapped)
            _check_file(opened.st_mode, opened.st_size, shown, limit, fix)
            data = stream.read(limit + 1)
    except OSError as err:
        raise _os_error(err, shown) from err
    if len(data) > limit:                              # it grew while being read
        _check_file(stat.S_IFREG, len(data), shown, limit, fix)
    return data


def _download(url: str, timeout: float) -> bytes:
    """GET an image with a deadline and a size cap; network trouble becomes NetworkError/ImageNotFoundError.

    ``timeout`` is the deadline of the whole download (redirects included), not of each read: a server that
    drips a byte a second is stopped when it passes, between two pieces (a read that stalls completely is stopped
    by the same ``timeout``, so no download outlives it by more than one read). Uses httpx, the course's one HTTP client for its own calls (``requests`` appears only where lesson 02 teaches
    a raw HTTP call, :func:`helpers.client.http_endpoint`). Redirects are followed, as a browser would."""
    shown = shorten(redact_url(url), 200)
    deadline = time.monotonic() + timeout
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True,
                          headers={"User-Agent": USER_AGENT}) as response:
            if response.status_code in (404, 410):
                raise ImageNotFoundError(f"Downloading {shown} failed: HTTP {response.status_code} "
                                         f"({response.reason_phrase}), there is no image at that address.",
                                         source=shown, fix="check the URL. " + DOWNLOAD_ADVICE)
            if response.status_code >= 400:
                raise NetworkError(f"Downloading {shown} failed: HTTP {response.status_code} "
                                   f"({response.reason_phrase}).", status=response.status_code, fix=DOWNLOAD_ADVICE)
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_bytes():          # each piece as it arrives (no buffering to a size)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the download's deadline passed")
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise ImageTooLargeError(
                        f"{shown} is larger than {human_bytes(MAX_DOWNLOAD_BYTES)}; the download was stopped.",
                        source=shown, fix="download a smaller version of the image. " + DOWNLOAD_ADVICE)
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TimeoutException as err:
        raise NetworkError(f"Downloading {shown} timed out after {timeout:g} s.",
                           fix="try again later, or pass a larger timeout=. " + DOWNLOAD_ADVICE) from err
    except (httpx.HTTPError, httpx.InvalidURL) as err:
        raise NetworkError(f"Downloading {shown} failed: {type(err).__name__} (no connection to the site).",
                           fix="check the address and your internet connection. " + DOWNLOAD_ADVICE) from err


def encode_image(path: str | os.PathLike) -> str:
    """Plain base64 of a file's bytes, exactly like the source notebooks (the naive way, for comparison).

    No resizing, no metadata removal: the GPS position in a photo's EXIF goes along. Prefer
    :func:`helpers.images.to_data_url` / :func:`helpers.images.image_part`. A missing path raises
    ImageNotFoundError; a folder, a device or a FIFO, or a file over the 20 MB per-image limit (the API would
    refuse it) raise an ImageError before anything is read.

    >>> import tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp()) / "hi.bin"; _ = tmp.write_bytes(b"hi")
    >>> encode_image(tmp)
    'aGk='

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    data = read_path(os.fsdecode(os.fspath(path)), limit=MAX_IMAGE_BYTES,   # the bytes open(path, "rb").read() gives
                     fix="that is over the per-image limit, so the API would refuse it: use to_data_url(path), "
                         "which shrinks it to the size the model looks at.")
    return base64.b64encode(data).decode("utf-8")

# ====================================================================================================
# image decode (formerly helpers/image_decode.py)
# ====================================================================================================

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

# ====================================================================================================
# image encode (formerly helpers/image_encode.py)
# ====================================================================================================

MIME_BY_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "WEBP": "image/webp",
                  "GIF": "image/gif"}
_LOSSY_PHOTO_FORMATS = {"JPEG", "MPO", "AVIF", "HEIF", "HEIC"}
_SAFE_MODES = {"PNG": {"1", "L", "LA", "P", "RGB", "RGBA"}, "JPEG": {"L", "RGB"}, "MPO": {"L", "RGB"},
               "WEBP": {"RGB", "RGBA"}, "GIF": {"L", "P"}}

# ITU-T T.81 (the JPEG standard), Annex K, Table K.1: the luminance quantization table that libjpeg scales
# by "quality" (jcparam.c: scale = 200 - 2*quality for quality >= 50). Used to tell whether a source JPEG was
# saved coarser than JPEG_QUALITY, in which case re-encoding reuses its own tables.
_ANNEX_K_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
_QUALITY_LUMA_SUM = sum(min(255, max(1, (q * (200 - 2 * JPEG_QUALITY) + 50) // 100)) for q in _ANNEX_K_LUMINANCE)


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


def strip_metadata(data: bytes, decoded: Decoded) -> bytes | None:
    """The source file without its metadata, pixels untouched (check with :func:`_is_clean`), or None."""
    fmt = decoded.format
    if fmt in ("JPEG", "MPO"):
        return _strip_jpeg(data)
    if fmt == "PNG":
        return _strip_png(data)
    if fmt == "WEBP":
        return _strip_webp(data)
    if fmt == "GIF":     # GIF blocks are not worth hand-parsing: Pillow rewrites the palette image losslessly
        if not metadata_found(decoded.image, None) and "icc_profile" not in decoded.image.info:
            return data
        image = decoded.image.copy()
        return encode(image, "GIF")
    return None


def is_clean(data: bytes, decoded: Decoded) -> bool:
    """Self-check of a container-stripped file: it decodes, same size and mode, and no metadata is left."""
    try:
        with Image.open(io.BytesIO(data)) as check:
            check.load()
            return (check.size == decoded.size and check.mode == decoded.image.mode
                    and not metadata_found(check, safe_exif(check)) and "icc_profile" not in check.info)
    except Exception:
        return False


# --- encoding ----------------------------------------------------------------------------------------------

def output_format(source_format: str | None, mode: str) -> str:
    """The format to re-encode in: WEBP stays WEBP, a photo without alpha JPEG, anything else PNG (lossless)."""
    if source_format == "WEBP":
        return "WEBP"
    if source_format in _LOSSY_PHOTO_FORMATS and mode in ("L", "RGB"):
        return "JPEG"
    return "PNG"


def _jpeg_options(decoded: Decoded) -> tuple[dict[str, Any], str]:
    tables = decoded.jpeg_qtables
    options: dict[str, Any] = {"optimize": True}
    if decoded.jpeg_sampling in (0, 1, 2):
        options["subsampling"] = decoded.jpeg_sampling
    if tables and 0 in tables and sum(tables[0]) > _QUALITY_LUMA_SUM:
        options["qtables"] = [list(tables[k]) for k in sorted(tables)][:2]
        return options, f"the source's own quantization tables, coarser than quality {JPEG_QUALITY}"
    options["quality"] = JPEG_QUALITY
    return options, f"quality {JPEG_QUALITY}"


def encode(image: Image.Image, fmt: str, options: dict[str, Any] | None = None) -> bytes:
    """Encode an image we own, with no metadata (``info`` is cleared except transparency)."""
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    buffer = io.BytesIO()
    image.save(buffer, fmt, **(options or {}))
    return buffer.getvalue()


def save_options(decoded: Decoded, fmt: str) -> tuple[dict[str, Any], str]:
    """Encoder options for ``fmt`` and how to describe them in a note ("quality 90", "lossless")."""
    if fmt == "JPEG":
        return _jpeg_options(decoded)
    if fmt == "WEBP":
        if decoded.lossless_webp:
            return {"lossless": True}, "lossless"
        return {"quality": WEBP_QUALITY}, f"quality {WEBP_QUALITY}"
    return {"compress_level": 6}, "lossless"


# --- deciding and re-encoding --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Encoded:
    """Re-encoded bytes, their size and format, and what was done (notes)."""

    data: bytes
    size: tuple[int, int]
    format: str                        # "PNG" | "JPEG" | "WEBP"
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
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


def plan_image(src: Source, decoded: Decoded) -> Plan:
    """Size as displayed, orientation, colour profile, metadata to drop, and whether the file can be kept."""
    image = decoded.image
    exif = safe_exif(image)
    orientation = orientation_of(exif)
    icc = image.info.get("icc_profile") or None
    icc_action, icc_name, dropped = icc_plan(image, icc)
    removed = [*metadata_found(image, exif), *([dropped] if dropped else [])]
    size = decoded.size if orientation < 5 else decoded.size[::-1]
    sixteen_bit = decoded.format == "PNG" and src.data is not None and src.data[24:25] == b"\x10"
    can_keep = (decoded.frames == 1 and orientation == 1 and icc_action != "convert" and not sixteen_bit
                and image.mode in _SAFE_MODES.get(decoded.format or "", ()))
    name = "JPEG" if decoded.format == "MPO" else (decoded.format or "in-memory image")
    return Plan(size, orientation, icc, icc_action, icc_name, tuple(removed), sixteen_bit, name, can_keep)


def reencode(decoded: Decoded, plan: Plan, target: tuple[int, int], model: str, detail: str) -> Encoded:
    """Orient, convert colours and mode, resize and encode."""
    notes: list[str] = []
    image = decoded.image
    draft = ""
    if decoded.stored_size and image.size != target:
        # A draft decode (JPEG at 1/2, 1/4, 1/8: the DCT already averaged the pixels): finish the resize here, in
        # the stored orientation, with BICUBIC, then turn the small result. benchmarks/prepare_speed.py (12 MP
        # phone JPEG): same size and tokens, 2.6-3.6x faster than naive Pillow; against a full decode + LANCZOS,
        # PSNR 43.3-44.5 dB and SSIM 0.972-0.991 (naive Pillow with its JPEG re-encode: 43.8-46.0 dB, 0.975-0.994).
        draft = f", JPEG decoded at 1/{decoded.size[0] // image.width} scale"
        stored_target = target if plan.orientation < 5 else (target[1], target[0])
        image = image.resize(stored_target, Image.Resampling.BICUBIC)
    if plan.orientation != 1:
        image = ImageOps.exif_transpose(image)
        notes.append(f"{ORIENTATION_VERBS[plan.orientation]} by EXIF orientation {plan.orientation}")
    if plan.icc_action == "convert" and plan.icc:
        try:
            image = to_srgb(image, plan.icc)
            notes.append(f"converted colours from ICC profile '{plan.icc_name}' to sRGB")
        except Exception:   # littleCMS refused the profile: its colours are lost, the pixels are not
            notes.append(f"dropped ICC profile '{plan.icc_name}' (it could not be applied)")
    image, mode_note = normalise_mode(image)
    if mode_note:
        notes.append(mode_note)
    elif plan.sixteen_bit:
        notes.append("converted 16-bit PNG pixels to 8 bits")
    if image.size != target or draft:
        before = plan.size          # as displayed
        if image.size != target:
            image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        notes.append(f"resized {before[0]}×{before[1]} → {target[0]}×{target[1]} "
                     f"(what {model} looks at with detail={detail!r}{draft})")
    elif image is decoded.image:
        image = image.copy()        # _encode clears .info: never on the decoded original
    fmt = output_format(decoded.format, image.mode)
    options, how = save_options(decoded, fmt)
    if decoded.format is None:
        notes.append(f"encoded the in-memory image as {fmt} ({how})")
    elif plan.format_name != fmt:
        notes.append(f"converted {plan.format_name} to {fmt} ({how})")
    else:
        notes.append(f"re-encoded as {fmt} ({how})")
    return Encoded(encode(image, fmt, options), image.size, fmt, tuple(notes))

# ====================================================================================================
# images
# ====================================================================================================

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
                f"{human_bytes(self.original_bytes)} → {self.width}×{self.height} {self.mime_type}, "
                f"{human_bytes(len(self.data))} ({self.model}, detail={self.detail!r}, {self.tokens} tokens)")
        return "\n".join([head, *(f"  - {note}" for note in self.notes)])


# --- preparing ---------------------------------------------------------------------------------------------



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

    check_detail(detail)
    notes: list[str] = []
    model, family = _resolve_model(model, family, notes)
    tokens.check_detail(detail, model, family)      # e.g. 'original' on a model without it: before any work
    src = read_source(source, timeout)
    decoded = decode(src, fit=lambda w, h: tokens.scaled_size(w, h, detail, model, family))   # JPEG: draft decode
    animated = warn_if_animated(src, decoded)
    if animated:
        notes.append(animated)
    plan = plan_image(src, decoded)
    width, height = plan.size
    target_w, target_h = tokens.scaled_size(width, height, detail, model, family)
    target = (min(target_w, width), min(target_h, height))       # never upscale

    data, (out_w, out_h), mime, more_notes = _produce(src, decoded, plan, target, model, detail)
    notes.extend(more_notes)
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"{src.name} is still {human_bytes(len(data))} after preparation, over the "
            f"{human_bytes(max_bytes)} per-image limit.", source=src.name,
            fix="use detail='low', crop the part that matters, or save it as JPEG before sending.")
    original_bytes = len(src.data) if src.data is not None else len(decoded.image.tobytes())
    return PreparedImage(data=data, mime_type=mime, width=out_w, height=out_h, original_width=width,
                         original_height=height, original_bytes=original_bytes, source_name=src.short_name,
                         notes=tuple(notes), detail=detail, model=model, family=family)


def _produce(src: Source, decoded: Decoded, plan: Plan, target: tuple[int, int], model: str,
             detail: str) -> tuple[bytes, tuple[int, int], str, list[str]]:
    """The bytes to send, their size, MIME type and notes: the cleaned original or a re-encode, the smaller."""
    size = plan.size
    kept = strip_metadata(src.data, decoded) if plan.can_keep_pixels and src.data is not None else None
    encoded = reencode(decoded, plan, target, model, detail) if kept is None or target != size else None
    if kept is not None and (encoded is None or len(kept) <= len(encoded.data)) and is_clean(kept, decoded):
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
        return kept, size, MIME_BY_FORMAT[decoded.format or ""], notes
    encoded = encoded or reencode(decoded, plan, target, model, detail)
    notes = list(encoded.notes)
    if plan.removed:
        notes.append("removed metadata: " + ", ".join(plan.removed))
    return encoded.data, encoded.size, MIME_BY_FORMAT[encoded.format], notes


# --- the public conveniences -------------------------------------------------------------------------------

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
    check_detail(detail)
    if isinstance(source, PreparedImage):
        url = source.data_url
    elif isinstance(source, str) and is_http_url(source):
        url = source
    else:
        url = to_data_url(source, detail, model)
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}
