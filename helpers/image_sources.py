"""Reading an image source into bytes, safely: local paths, downloads, bytes, data URLs, Pillow images.

Part of the image helpers (``helpers.images`` builds on it). A local path is checked *before* it is read: it
must be a regular file (a folder, a device such as ``/dev/zero``, a FIFO or a socket is refused at once, it
would never end or block forever) of at most :data:`~helpers.image_formats.MAX_INPUT_BYTES`, and at most that
many bytes are read. Downloads have a timeout and the same byte cap. Every failure is a
:class:`~helpers.errors.ImageError` that names the source (with any URL password redacted) and what to do.

Taught in notebooks/02_local_images_base64.ipynb.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> read_path(str(folder))
Traceback (most recent call last):
...
helpers.errors.ImageNotFoundError: '...' is a folder, not an image file. What to do: pass the path of one image inside it (e.g. 'images/photo.jpg').
"""

from __future__ import annotations

import base64
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from helpers.errors import (
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    NetworkError,
    UnsupportedImageError,
)
from helpers.image_formats import (
    MAX_DOWNLOAD_BYTES,
    MAX_IMAGE_BYTES,
    MAX_INPUT_BYTES,
    USER_AGENT,
    decode_data_url,
    human_bytes,
    is_http_url,
    shorten,
)
from helpers.redaction import redact_url

__all__ = ["DOWNLOAD_ADVICE", "ImageSource", "Source", "encode_image", "read_path", "read_source"]

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
    """GET an image with a timeout and a size cap; network trouble becomes NetworkError/ImageNotFoundError."""
    shown = shorten(redact_url(url), 200)
    try:
        with requests.get(url, timeout=timeout, stream=True, headers={"User-Agent": USER_AGENT}) as response:
            if response.status_code in (404, 410):
                raise ImageNotFoundError(f"Downloading {shown} failed: HTTP {response.status_code} "
                                         f"({response.reason}), there is no image at that address.",
                                         source=shown, fix="check the URL. " + DOWNLOAD_ADVICE)
            if response.status_code >= 400:
                raise NetworkError(f"Downloading {shown} failed: HTTP {response.status_code} ({response.reason}).",
                                   status=response.status_code, fix=DOWNLOAD_ADVICE)
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_content(chunk_size=1 << 16):
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise ImageTooLargeError(
                        f"{shown} is larger than {human_bytes(MAX_DOWNLOAD_BYTES)}; the download was stopped.",
                        source=shown, fix="download a smaller version of the image. " + DOWNLOAD_ADVICE)
                chunks.append(chunk)
            return b"".join(chunks)
    except requests.Timeout as err:
        raise NetworkError(f"Downloading {shown} timed out after {timeout:g} s.",
                           fix="try again later, or pass a larger timeout=. " + DOWNLOAD_ADVICE) from err
    except requests.RequestException as err:
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
