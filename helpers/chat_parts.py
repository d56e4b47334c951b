"""Building a request's messages: checked text, image content parts, display names, and redaction for display.

The layer under :mod:`helpers.chat` and :mod:`helpers.conversation` (on :mod:`helpers.images` and
:mod:`helpers.tokens`; no settings or client here). Text is checked before anything is sent: a lone UTF-16
surrogate (a cut emoji, text read with ``errors='surrogateescape'``) is a
:class:`~helpers.errors.BadRequestError` saying what to do, not a ``UnicodeEncodeError`` from deep inside httpx.
:func:`redacted_body` is what the course shows or saves of a body: URL passwords as ``***``.

Taught in notebooks/01_image_urls.ipynb, notebooks/02_local_images_base64.ipynb and notebooks/09_conversations.ipynb.

>>> user_message("What is this?", [image_content("https://example.com/cat.png", "low", None, 0)[0]])["content"][1]
{'type': 'image_url', 'image_url': {'url': 'https://example.com/cat.png', 'detail': 'low'}}
"""

from __future__ import annotations

import copy
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image

from helpers.errors import BadRequestError
from helpers.images import decode_data_url, image_part, is_http_url, prepare_image
from helpers.redaction import host_of, redact_url

__all__ = ["ImageInfo", "as_sources", "check_max_tokens", "check_sendable", "check_text", "data_url_size",
           "image_content", "nothing_to_send", "redacted_body", "source_name", "user_message"]


# --- small value types --------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageInfo:
    """What the course remembers about an image it sent: a display name and the size the model received.

    >>> ImageInfo("cat.png", 512, 384).label()
    'cat.png, 512×384'
    """

    name: str
    width: int | None = None
    height: int | None = None

    def label(self) -> str:
        """The name, and the size when known."""
        size = f", {self.width}×{self.height}" if self.width and self.height else ""
        return f"{self.name}{size}"


# --- validation ---------------------------------------------------------------------------------

def check_max_tokens(value: Any) -> int:
    """``value`` if it is a positive int (not a bool), else a BadRequestError saying what to pass.

    >>> check_max_tokens(300)
    300
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequestError(f"max_tokens must be a positive whole number, got {value!r}.", code="invalid_max_tokens",
                              fix="pass e.g. max_tokens=300 (the longest answer you want, in tokens).")
    return value


# UTF-16 surrogate code points: never valid on their own in UTF-8, so no request carrying one can be sent.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_FIX = ("the text was probably cut in the middle of an emoji, or read with errors='surrogateescape': "
                  "read it again with encoding='utf-8', or clean it with "
                  "text.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace').")


def _surrogate_error(text: str, what: str) -> BadRequestError:
    found = _SURROGATE.search(text)
    assert found is not None
    return BadRequestError(
        f"{what} contains {ascii(found.group())} at character {found.start()}, a UTF-16 surrogate that is not a "
        "character on its own: it cannot be sent as UTF-8, so nothing was sent.", code="invalid_text",
        fix=_SURROGATE_FIX)


def check_text(text: Any, what: str = "text") -> str:
    """``text`` if it is a string that can be sent (no lone surrogates), else a BadRequestError.

    >>> check_text("What is this?")
    'What is this?'
    >>> check_text("cut emoji " + chr(0xD83D), "prompt")                             # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    helpers.errors.BadRequestError: prompt contains '\\ud83d' at character 10, a UTF-16 surrogate ...
    """
    if not isinstance(text, str):
        raise BadRequestError(f"{what} must be a string, got {type(text).__name__}.", code="invalid_text",
                              fix=f"pass the question as a str, e.g. {what}='What is in this image?'.")
    if _SURROGATE.search(text):
        raise _surrogate_error(text, what)
    return text


def check_sendable(value: Any, where: str) -> None:
    """Every string in a request body (messages, history, names) must be encodable: no surrogates anywhere."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise _surrogate_error(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_sendable(key, f"{where} (a key)")
            check_sendable(item, f"{where}.{key}" if isinstance(key, str) else where)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_sendable(item, f"{where}[{index}]")


def nothing_to_send() -> BadRequestError:
    """The error for a turn with neither text nor image."""
    return BadRequestError("Nothing to send: the question is empty and there is no image.", code="empty_message",
                           fix="ask a question, attach an image, or both.")


def as_sources(images: Any) -> list[Any]:
    """One image or several: a single path/URL/bytes/PIL image is not iterated character by character.

    >>> as_sources("cat.png"), as_sources(["a.png", "b.png"]), as_sources(None)
    (['cat.png'], ['a.png', 'b.png'], [])
    """
    if images is None:
        return []
    if isinstance(images, (str, bytes, bytearray, os.PathLike, Image.Image)) or not isinstance(images, Iterable) \
            or hasattr(images, "__array_interface__"):
        return [images]
    return list(images)


# --- images -------------------------------------------------------------------------------------

def source_name(source: Any, index: int) -> str:
    """A short display name for an image: the file name (of a path or URL), else ``image N``; never a password.

    >>> source_name("https://ann:pw@example.com/", 0), source_name("../images/cat.png", 1), source_name(b"", 2)
    ('example.com', 'cat.png', 'image 3')
    """
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith(("http://", "https://")):
            try:
                return unquote(urlsplit(text).path.rsplit("/", 1)[-1]) or host_of(text)
            except ValueError:   # a malformed URL (e.g. "http://[::1/x.png"): only a label
                return redact_url(text)
        if not text.startswith("data:"):
            return Path(text).name
    name = getattr(source, "source_name", None) or getattr(source, "filename", None)
    return Path(str(name)).name if name else f"image {index + 1}"


def data_url_size(url: str) -> tuple[int | None, int | None]:
    """The pixel size of the image in a data URL (its header only), or (None, None).

    >>> data_url_size("https://example.com/cat.png")
    (None, None)
    """
    if not url.startswith("data:"):
        return None, None
    try:
        _, data = decode_data_url(url)
        with Image.open(io.BytesIO(data)) as picture:  # reads the header only
            return picture.size
    except Exception:  # noqa: BLE001 - only a label; the server judges the image itself
        return None, None


def image_content(source: Any, detail: str, cost_model: str | None, index: int) -> tuple[dict[str, Any], ImageInfo]:
    """The content part for one image (via helpers.images.image_part) and what to remember about it.

    >>> image_content("https://example.com/cat.png", "low", None, 0)[1]
    ImageInfo(name='cat.png', width=None, height=None)
    """
    name = source_name(source, index)
    if isinstance(source, str) and is_http_url(source):  # the provider downloads it: size unknown here
        return image_part(source, detail=detail), ImageInfo(name, None, None)
    prepared = prepare_image(source, detail=detail, model=cost_model)  # once; its size comes with it
    return image_part(prepared, detail=detail), ImageInfo(name, prepared.width, prepared.height)


def user_message(text: str, parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A user message: the text part (unless empty with images), then the image parts.

    >>> user_message("Hi", [])
    {'role': 'user', 'content': [{'type': 'text', 'text': 'Hi'}]}
    """
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or not parts else []
    return {"role": "user", "content": content + list(parts)}


def redacted_body(body: Any) -> Any:
    """A deep copy of a request body with the password of every URL in it hidden (``user:***@``), for showing
    or saving; the body actually sent keeps the URL as the provider needs it.

    >>> redacted_body({"url": "https://ann:pw@example.com/cat.png"})
    {'url': 'https://ann:***@example.com/cat.png'}
    """
    if isinstance(body, str):
        return redact_url(body) if "@" in body else body
    if isinstance(body, dict):
        return {key: redacted_body(value) for key, value in body.items()}
    if isinstance(body, (list, tuple)):
        return [redacted_body(value) for value in body]
    return copy.deepcopy(body)
