"""Writing the image that is sent: metadata cut out of the file container, or pixels oriented and encoded afresh.

Part of the image helpers (``helpers.images`` picks the smaller of the two). :func:`plan` decides what an image
needs before touching a pixel; :func:`reencode` orients, converts colours and mode, resizes and encodes. Cutting JPEG segments and
PNG/WEBP chunks removes EXIF, XMP, ICC, IPTC and comments without decoding, so a JPEG loses no quality; a
self-check (:func:`is_clean`) then decodes the result. Encoding keeps the source's kind of compression: JPEG
at quality 90 (or the source's own coarser tables), WEBP lossless or quality 90, everything else PNG.

Taught in notebooks/02_local_images_base64.ipynb.

>>> output_format("JPEG", "RGB"), output_format("JPEG", "RGBA"), output_format("BMP", "RGB")
('JPEG', 'PNG', 'PNG')
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from helpers.image_decode import Decoded
from helpers.image_metadata import (
    ORIENTATION_VERBS,
    icc_plan,
    metadata_found,
    normalise_mode,
    orientation_of,
    safe_exif,
    to_srgb,
)
from helpers.image_sources import Source

__all__ = ["JPEG_QUALITY", "MIME_BY_FORMAT", "WEBP_QUALITY", "Encoded", "Plan", "encode", "is_clean",
           "output_format", "plan", "reencode", "save_options", "strip_metadata"]

# Our own choices (not provider facts):
JPEG_QUALITY = 90                       # re-encoded JPEGs: visually lossless for photos, far smaller than PNG
WEBP_QUALITY = 90                       # re-encoded lossy WEBPs

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


def plan(src: Source, decoded: Decoded) -> Plan:
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
