"""The course's own sample images: where they are, and which of them have a public copy a provider can fetch.

A real provider (OpenAI, Azure, a proxy) downloads ``image_url`` URLs itself, so it cannot see
``http://127.0.0.1/...`` or a file on your disk. ``images/public_copies.json`` records, for each course image
that has one, the public URL of the same picture (the file it was made from), with the SHA-256 that URL must
serve and how that checksum was obtained. ``helpers.client.course_image_url`` sends those URLs; an image with
no public copy is sent inline as a data URL instead.

>>> public_copy("rocket.jpg").url.startswith("https://raw.githubusercontent.com/scikit-image/")
True
>>> public_copy("handwriting_en.jpg") is None
True

Taught in notebooks/01_image_urls.ipynb.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from helpers.errors import ImageNotFoundError
from helpers.local import IMAGES_DIR, REPO_ROOT

__all__ = ["IMAGES_DIR", "REPO_ROOT", "PublicCopy", "course_image_path", "local_copy_of", "public_copy"]

PUBLIC_COPIES_FILE = IMAGES_DIR / "public_copies.json"


@dataclass(frozen=True)
class PublicCopy:
    """Where a provider can fetch a course image: ``url`` serves bytes with SHA-256 ``sha256``."""

    name: str
    url: str
    sha256: str
    local_sha256: str
    same_picture: str
    checksum_from: str


@functools.cache
def _public_copies() -> dict[str, PublicCopy]:
    data = json.loads(PUBLIC_COPIES_FILE.read_text(encoding="utf-8"))
    return {name: PublicCopy(name, row["public_url"], row["public_sha256"], row["local_sha256"],
                             row["same_picture"], row["checksum_from"])
            for name, row in data["files"].items()}


def public_copy(name: str) -> PublicCopy | None:
    """The public copy of ``images/<name>``, or None if the image exists only in this repository."""
    return _public_copies().get(name)


def local_copy_of(url: str) -> Path | None:
    """The course file that ``url`` is the public copy of, or None (lets the offline backend answer for it).

    >>> local_copy_of(public_copy("cat.jpg").url).name
    'cat.jpg'
    """
    for copy in _public_copies().values():
        if copy.url == url:
            return IMAGES_DIR / copy.name
    return None


def course_image_path(name: str) -> Path:
    """``images/<name>``, checked: a bare file name of a file that exists, else a clear error listing them.

    >>> course_image_path("cat.jpg").name
    'cat.jpg'
    """
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ImageNotFoundError(
            f"{name!r} is not a file name in the course images/ folder.",
            source=str(name), fix="pass just the file name, e.g. course_image_url('landscape_summer_palace.jpg').",
        )
    path = IMAGES_DIR / name
    if not path.is_file():
        available = sorted(p.name for p in IMAGES_DIR.glob("*") if p.is_file() and not p.name.startswith("."))
        shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
        raise ImageNotFoundError(
            f"There is no {name!r} in the course images/ folder.",
            source=name, fix=f"use one of: {shown or '(the folder is empty)'}.",
        )
    return path
