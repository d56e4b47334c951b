"""What an image *is*, before decoding it: the API's limits, the real format from the first bytes, data URLs.

The lowest layer of the image helpers (``helpers.images`` builds on it). Nothing here opens a file or the
network: :func:`sniff_mime` reads magic numbers, never a file name, :func:`decode_data_url` checks and decodes
a ``data:`` URL. (URL passwords are hidden by :func:`helpers.redaction.redact_url` wherever a URL is shown.)

Taught in notebooks/02_local_images_base64.ipynb.

>>> sniff_mime(b"GIF89a" + bytes(10))
'image/gif'
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from helpers.errors import UnsupportedImageError

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "MAX_DOWNLOAD_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_INPUT_BYTES",
    "SUPPORTED_MIME",
    "USER_AGENT",
    "Kind",
    "decode_data_url",
    "human_bytes",
    "is_http_url",
    "shorten",
    "sniff",
    "sniff_mime",
    "with_article",
]

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
DOWNLOAD_TIMEOUT = 30.0                 # seconds, for connecting and for each read of an http(s) download
MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024  # refuse to download more than this (a photo to shrink may exceed 20 MB)
USER_AGENT = "gpt-vision-course-helpers/0.1 (educational notebooks; python-requests)"
#: The most bytes read from one local file or one download before deciding anything: a photo to shrink may
#: exceed the 20 MB per-image limit, a 10 GB file or a device such as /dev/zero is refused at once.
MAX_INPUT_BYTES = MAX_DOWNLOAD_BYTES

ADVICE_CONVERT = "Open it in an image editor (or Preview/Paint) and save it as PNG or JPEG, then pass that file."


# --- small text helpers --------------------------------------------------------------------------------------

def with_article(label: str) -> str:
    """The label with its indefinite article.

    >>> with_article("AVIF image"), with_article("PNG")
    ('an AVIF image', 'a PNG')
    """
    return ("an " if label[:1] in "AEIOU" else "a ") + label


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis.

    >>> shorten("abcdef", 4)
    'abc…'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


