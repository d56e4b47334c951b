"""What one image question costs the offline backend: hashes, sniffs, decodes, and the modules it visits.

Run from the repository root:  python benchmarks/request_path.py  [--image images/cat.jpg] [--markdown]

One request, as a learner's notebook sends it: ``POST /v1/chat/completions`` with a course JPEG as a base64 data
URL, to a real server on 127.0.0.1 in this process, with the analysis cache cold (memory and disk). While that
one request runs, these functions are wrapped and counted (the server's code is not changed):

- SHA-256 passes over the image bytes or the request body (``hashlib.sha256`` given at least 1 kB);
- image sniffs (``sniff``, the magic-number reader every MIME check goes through);
- image opens (a Pillow ``ImageFile`` constructed: ``Image.open`` or a format reader), pixel decodes
  (``ImageFile.load`` that reads pixels) and ``cv2.imdecode`` calls.

The request path is recorded with a profiler hook on every thread: each time the running code passes from one
course module to another, the new module is noted; consecutive calls inside a module count once.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import importlib
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Counts:
    def __init__(self) -> None:
        self.on = False
        self.lock = threading.Lock()
        self.counter: collections.Counter[str] = collections.Counter()

    def add(self, name: str) -> None:
        if self.on:
            with self.lock:
                self.counter[name] += 1


COUNTS = Counts()


def _wrap_sha256(image: bytes, body: bytes) -> None:
    original = hashlib.sha256

    def counted(data: Any = b"", *args: Any, **kwargs: Any) -> Any:
        if isinstance(data, bytes | bytearray | memoryview) and len(data) >= 1024:
            raw = bytes(data)
            what = "image" if raw == image else "body" if raw.endswith(body) or body.endswith(raw) else "other"
            COUNTS.add(f"sha256 ({what})")
        return original(data, *args, **kwargs)

    hashlib.sha256 = counted  # type: ignore[assignment]


def _sniff_function() -> tuple[Any, str]:
    """The course's magic-number reader, wherever the images package keeps it."""
    for name in ("helpers.image_formats", "helpers.images", "helpers._images"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "sniff"):
            return module.sniff, "sniff"
    raise SystemExit("cannot find the course's sniff() function")


def _wrap_everywhere(original: Any, wrapper: Any) -> None:
    """Replace ``original`` by ``wrapper`` in every loaded course module that holds it (``from x import f``)."""
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("helpers"):
            for attr, value in list(vars(module).items()):
                if value is original:
                    setattr(module, attr, wrapper)


def _wrap_sniff() -> None:
    original, _ = _sniff_function()

    def counted(data: bytes) -> Any:
        COUNTS.add("sniff")
        return original(data)

    _wrap_everywhere(original, counted)


def _wrap_decoders() -> None:
    import cv2
    from PIL import ImageFile

    init, load = ImageFile.ImageFile.__init__, ImageFile.ImageFile.load

    def counted_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        COUNTS.add("image open (Pillow)")

    def counted_load(self: Any) -> Any:
        if getattr(self, "tile", None):          # pixels not read yet: this call decodes them
            COUNTS.add("pixel decode (Pillow)")
        return load(self)

    ImageFile.ImageFile.__init__ = counted_init  # type: ignore[method-assign]
    ImageFile.ImageFile.load = counted_load  # type: ignore[method-assign]
    imdecode = cv2.imdecode

    def counted_imdecode(*args: Any, **kwargs: Any) -> Any:
        COUNTS.add("cv2.imdecode")
        return imdecode(*args, **kwargs)

    cv2.imdecode = counted_imdecode


class PathRecorder:
    """Which course modules run, in order (a new entry each time the code passes into another module)."""

    def __init__(self) -> None:
        self.on = False
        self.events: list[tuple[float, int, str]] = []
        self.last: dict[int, str] = {}
        self.lock = threading.Lock()

    def hook(self, frame: Any, event: str, arg: Any) -> None:
        if not self.on or event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("helpers"):
            return
        thread = threading.get_ident()
        if self.last.get(thread) != module:
            self.last[thread] = module
            with self.lock:
                self.events.append((time.perf_counter(), thread, module))

    def path(self) -> list[str]:
        ordered = [module for _, _, module in sorted(self.events)]
        return [m for i, m in enumerate(ordered) if i == 0 or ordered[i - 1] != m]


def _start_server() -> tuple[str, Any]:
    import helpers.offline as offline
    if hasattr(offline, "start"):
        return offline.start().rstrip("/"), offline.stop
    return offline.ensure_server().rstrip("/"), offline.stop_server


def _clear_caches() -> None:
    """Cold: no analysis in memory (the disk cache is a fresh empty folder, see main), no cached decode."""
    for name in ("helpers.offline.analysis", "helpers.offline.backend", "helpers.offline.images"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "clear_cache"):
            module.clear_cache()
        for value in vars(module).values():
            if hasattr(value, "cache_clear"):
                value.cache_clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(ROOT / "images" / "cat.jpg"))
    parser.add_argument("--detail", default="auto", choices=("auto", "low", "high"))
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args()
    os.environ["VISION_OFFLINE_CACHE"] = tempfile.mkdtemp(prefix="request-path-")   # cold disk cache
    os.environ["VISION_DOTENV"] = "off"
    image = Path(args.image).read_bytes()
    url_data = "data:image/jpeg;base64," + base64.b64encode(image).decode()
    payload = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": url_data, "detail": args.detail}}]}]}
    body = json.dumps(payload).encode()

    recorder = PathRecorder()
    threading.setprofile(recorder.hook)
    sys.setprofile(recorder.hook)
    base, stop = _start_server()
    import helpers.offline.server  # noqa: F401 - everything the request needs is loaded now
    _wrap_sha256(image, body)
    _wrap_sniff()
    _wrap_decoders()
    # The OCR warm-up runs in the background at start: wait for it so it is not counted.
    try:
        for _ in range(600):
            warm = urllib.request.urlopen(urllib.request.Request(base + "/v1/models", headers={  # noqa: S310
                "Authorization": "Bearer offline"}), timeout=5)
            warm.read()
            if threading.active_count() and not any(t.name == "offline-ocr-warmup" for t in threading.enumerate()):
                break
            time.sleep(0.1)
        _clear_caches()
        request = urllib.request.Request(base + "/v1/chat/completions", data=body, headers={
            "Authorization": "Bearer offline", "Content-Type": "application/json"})
        COUNTS.on = recorder.on = True
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - our own loopback server
            answer = json.loads(response.read())
        time.sleep(0.2)
        COUNTS.on = recorder.on = False
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
        stop()
    path = recorder.path()
    visits = collections.Counter(path)
    print(f"One image question: {Path(args.image).name} ({len(image)} bytes, detail={args.detail}) as a data URL, body {len(body)} bytes, "
          f"cold analysis cache; answer {len(answer['choices'][0]['message']['content'])} characters.")
    print()
    print("| per request | count |\n|---|---|" if args.markdown else "per request:")
    for name in ("sha256 (image)", "sha256 (body)", "sha256 (other)", "sniff", "image open (Pillow)",
                 "pixel decode (Pillow)", "cv2.imdecode"):
        print(f"| {name} | {COUNTS.counter[name]} |" if args.markdown else f"  {name:24} {COUNTS.counter[name]}")
    print()
    print(f"request path: {len(path)} module entries, {len(visits)} modules")
    print(" -> ".join(m.removeprefix("helpers.") for m in path))
    print()
    print("| module | entries |\n|---|---|" if args.markdown else "entries per module:")
    for module, count in visits.most_common():
        print(f"| {module} | {count} |" if args.markdown else f"  {module:36} {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
