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

The steps live in layers, lowest first, each its own module: :mod:`helpers.image_formats` (limits, sniffing,
data URLs), :mod:`helpers.image_sources` (reading paths and downloads, bounded),
:mod:`helpers.image_decode` (Pillow, clear errors), :mod:`helpers.image_metadata` (orientation, metadata, colour)
and :mod:`helpers.image_encode` (planning, container stripping, re-encoding). This module prepares and packages; the names
notebooks import (``sniff_mime``, ``load_image``, ``encode_image``, ``decode_data_url``...) are re-exported here.

Taught in notebooks/02_local_images_base64.ipynb.

>>> from PIL import Image
>>> prepared = prepare_image(Image.new("RGB", (4000, 3000), "navy"), detail="low", model="gpt-4o")
>>> prepared.width, prepared.height, prepared.mime_type
(512, 384, 'image/png')
"""

from __future__ import annotations

import base64
import warnings
from dataclasses import dataclass, field
from functools import cached_property

from helpers import models, tokens
from helpers.errors import ImageTooLargeError, UnknownModelError
from helpers.image_decode import Decoded, decode, load_image, warn_if_animated
from helpers.image_encode import (
    JPEG_QUALITY,
    MIME_BY_FORMAT,
    WEBP_QUALITY,
    Plan,
    is_clean,
    reencode,
    strip_metadata,
)
from helpers.image_encode import plan as plan_image
from helpers.image_formats import (
    DOWNLOAD_TIMEOUT,
    MAX_DOWNLOAD_BYTES,
    MAX_IMAGE_BYTES,
    MAX_INPUT_BYTES,
    SUPPORTED_MIME,
    USER_AGENT,
    decode_data_url,
    human_bytes,
    is_http_url,
    sniff_mime,
)
from helpers.image_sources import ImageSource, Source, encode_image, read_source
from helpers.redaction import redact_url
from helpers.tokens import check_detail

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "JPEG_QUALITY",
    "MAX_DOWNLOAD_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_INPUT_BYTES",
    "SUPPORTED_MIME",
    "USER_AGENT",
    "WEBP_QUALITY",
    "ImageSource",
    "PreparedImage",
    "decode_data_url",
    "encode_image",
    "image_part",
    "is_http_url",
    "load_image",
    "prepare_image",
    "redact_url",
    "sniff_mime",
    "to_data_url",
]

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
