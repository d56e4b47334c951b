"""What an image carries besides its pixels, and how it is meant to be shown: metadata, orientation, colour.

Part of the image helpers (``helpers.images`` builds on it). It names the metadata found in a file (EXIF with
its GPS position, camera and dates, XMP, IPTC, comments, PNG text chunks, extra MPF pictures) so the notebooks
can show what would have leaked, reads the EXIF orientation, decides whether an ICC profile must be converted
to sRGB (by pushing a colour cube through it, not by its name) and brings any pixel mode to 8-bit L, RGB or RGBA.

Taught in notebooks/02_local_images_base64.ipynb.

>>> from PIL import Image
>>> normalise_mode(Image.new("1", (4, 4)))[1]
'converted 1-bit black-and-white pixels to 8-bit greyscale (L)'
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageChops

from helpers.errors import ADVICE_CONVERT, UnsupportedImageError, shorten

try:
    from PIL import ImageCms
except ImportError:  # pragma: no cover - a Pillow built without littleCMS: profiles are dropped, not converted
    ImageCms = None  # type: ignore[assignment]

__all__ = ["ORIENTATION_VERBS", "icc_plan", "metadata_found", "normalise_mode", "orientation_of", "safe_exif",
           "to_srgb"]

ORIENTATION_VERBS = {2: "mirrored left-right", 3: "rotated 180°", 4: "flipped upside down",
                     5: "transposed (mirrored along the diagonal)", 6: "rotated 90° clockwise",
                     7: "transversed (mirrored along the other diagonal)", 8: "rotated 90° counter-clockwise"}


def safe_exif(image: Image.Image) -> Image.Exif | None:
    """The image's EXIF block, or None when it is damaged.

    >>> from PIL import Image
    >>> len(safe_exif(Image.new("L", (1, 1))))
    0
    """
    try:
        return image.getexif()
    except Exception:  # damaged EXIF blocks raise assorted errors; the block is dropped anyway
        return None


def orientation_of(exif: Image.Exif | None) -> int:
    """The EXIF orientation (1..8; 1, upright, when missing or invalid).

    >>> orientation_of(None)
    1
    """
    value = exif.get(ExifTags.Base.Orientation, 1) if exif is not None else 1
    return value if isinstance(value, int) and value in ORIENTATION_VERBS else 1


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


def metadata_found(image: Image.Image, exif: Image.Exif | None) -> list[str]:
    """Human names of the metadata in an opened image (the ICC profile is reported separately).

    >>> from PIL import Image
    >>> picture = Image.new("RGB", (2, 2)); picture.info["comment"] = b"hi"
    >>> metadata_found(picture, safe_exif(picture))
    ['comment']
    """
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
        found.append(f"text chunks ({', '.join(shorten(k, 20) for k in text_keys[:4])}"
                     f"{', …' if len(text_keys) > 4 else ''})")
    if "mp" in info or "mpoffset" in info:
        found.append("extra pictures (MPF)")
    return found


def _srgb_profile() -> Any:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def icc_plan(image: Image.Image, icc: bytes | None) -> tuple[str, str, str]:
    """What to do with an embedded ICC profile: ("none" | "drop" | "convert", its name, how to report a drop).

    >>> from PIL import Image
    >>> icc_plan(Image.new("RGB", (1, 1)), None)
    ('none', '', '')
    """
    if not icc:
        return "none", "", ""
    if ImageCms is None:  # pragma: no cover - Pillow without littleCMS
        return "drop", "unreadable", "an unreadable ICC profile"
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        name = (ImageCms.getProfileDescription(profile) or "").strip() or "unnamed"
    except Exception:   # a damaged profile
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
    extrema: Any = ImageChops.difference(probe, out).getextrema()    # one (low, high) per band for RGB
    worst = max(high for _low, high in extrema)
    if worst <= 2:
        return "drop", name, f"ICC profile '{name}' (already sRGB)"
    return "convert", name, ""


def to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """The pixels converted from the ``icc`` profile's colours to sRGB (RGB, or RGBA keeping alpha)."""
    mode = "RGBA" if image.mode == "RGBA" else "RGB"
    out = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _srgb_profile(),
                                    outputMode=mode, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    assert out is not None
    return out


def normalise_mode(image: Image.Image) -> tuple[Image.Image, str | None]:
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
                                    fix=ADVICE_CONVERT) from err


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer or float greyscale to 0..255 (Pillow's own convert('L') clips instead)."""
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
