"""Image analyses kept on disk, so a restarted kernel (or the next lesson) does not run OCR on the same image again.

Local analysis is deterministic: the same bytes and the same analysis code give the same report. So a report is
stored as a small JSON file named after the SHA-256 of the image bytes, in a folder named after a fingerprint of
the analysing code (:data:`FINGERPRINT`: the source of ``helpers/ocr.py``, ``helpers/ocr_engine.py`` and of the
offline analysis modules, and the versions of RapidOCR, ONNX Runtime, OpenCV and imagehash). Changing any of these
starts a new folder, so a stale report is never read. The folder is ``VISION_OFFLINE_CACHE`` if set (``off`` turns storing off), else
``$XDG_CACHE_HOME/gpt-vision-course`` or ``~/.cache/gpt-vision-course``. Nothing is ever required of it: an
unwritable or corrupt folder only means the analysis runs again.

>>> from helpers.offline.stored import load
>>> load("0" * 64) is None                    # nothing stored under that digest
True
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from helpers.local import REPO_ROOT

__all__ = ["FINGERPRINT", "folder", "load", "save"]

_SOURCES = ("helpers/ocr.py", "helpers/ocr_engine.py", "helpers/offline/analysis.py",
            "helpers/offline/colours.py", "helpers/offline/pixels.py", "helpers/image_metadata.py")
_PACKAGES = ("rapidocr", "onnxruntime", "opencv-python-headless", "imagehash", "pillow", "numpy")


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for source in _SOURCES:
        path = REPO_ROOT / source
        digest.update(path.read_bytes() if path.exists() else source.encode())
    for package in _PACKAGES:
        try:
            digest.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none".encode())
    return digest.hexdigest()[:16]


#: Names the folder reports are kept in: a different analysing code never reads another's reports.
FINGERPRINT = _fingerprint()


def folder() -> Path | None:
    """Where reports are kept now (``None`` when ``VISION_OFFLINE_CACHE=off``).

    >>> folder().name.startswith("analysis-") or folder() is None
    True
    """
    raw = os.environ.get("VISION_OFFLINE_CACHE", "").strip()
    if raw.lower() in ("off", "0", "no", "false"):
        return None
    base = Path(raw).expanduser() if raw else \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpt-vision-course"
    return base / f"analysis-{FINGERPRINT}"


def load(key: str) -> dict[str, Any] | None:
    """The stored report (as JSON data) for image digest ``key``, or ``None``."""
    where = folder()
    if where is None:
        return None
    try:
        raw = json.loads((where / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def save(key: str, report: dict[str, Any]) -> None:
    """Store ``report`` (JSON data) under ``key``, atomically; any failure is ignored: storing only saves time."""
    where = folder()
    if where is None:
        return
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=where, suffix=".tmp", delete=False, encoding="utf-8") as file:
            json.dump(report, file)
        os.replace(file.name, where / f"{key}.json")
    except (OSError, TypeError, ValueError):
        return
