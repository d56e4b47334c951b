"""Latency of the offline backend through the real HTTP path with the official SDK.

Measures, in a fresh process (so the analysis cache starts empty):

(a) the first answer about a ~1-megapixel photo with text, after the start-up OCR warm-up (target < 1.5 s);
(b) the same request repeated, answered from the analysis cache (median, target < 50 ms);
(c) 32 concurrent requests with ``AsyncOpenAI`` (all must be answered).

Also shown: how long the background OCR warm-up takes, and the first answer about the course's handwriting
sample when it exists (a harder, 2-megapixel OCR case).

Run: ``python benchmarks/offline_latency.py``. Prints a table; exits non-zero if a target is missed.
"""

from __future__ import annotations

import asyncio
import base64
import io
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import openai
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from helpers.models import DEFAULT_MODEL  # noqa: E402
from helpers.offline import analysis  # noqa: E402
from helpers.offline.server import OfflineServer  # noqa: E402

FIRST_TARGET_S = 1.5
REPEAT_TARGET_MS = 50.0
CONCURRENT = 32
REPEATS = 20


def photo_with_text(width: int = 1280, height: int = 800) -> bytes:
    """A deterministic ~1 MP 'photo': a sky gradient, sensor noise, and a station sign with two lines of text."""
    rng = np.random.default_rng(0)
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = (np.array([90, 140, 210]) * (1 - y) + np.array([200, 190, 170]) * y).repeat(width, axis=1)
    noisy = np.clip(sky + rng.normal(0, 6, sky.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(noisy, "RGB")
    draw = ImageDraw.Draw(img)
    draw.rectangle((220, 250, 1060, 560), fill=(245, 245, 240), outline=(40, 40, 40), width=6)
    font = ImageFont.load_default(size=64)
    draw.text((270, 300), "PLATFORM 4", fill=(20, 20, 20), font=font)
    draw.text((270, 420), "Trains to Oxford", fill=(20, 20, 20), font=font)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def ask(sdk: openai.OpenAI, url: str, question: str = "What does the sign say?") -> tuple[float, str]:
    started = time.perf_counter()
    response = sdk.chat.completions.create(model=DEFAULT_MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": question}, {"type": "image_url", "image_url": {"url": url}}]}])
    return time.perf_counter() - started, response.choices[0].message.content or ""


async def concurrent(base_url: str, url: str) -> tuple[float, int]:
    async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="offline", max_retries=0, timeout=120) as sdk:
        started = time.perf_counter()
        calls = [sdk.chat.completions.create(model=DEFAULT_MODEL, messages=[{"role": "user", "content": [
            {"type": "text", "text": f"Question {i}: what is in the picture?"},
            {"type": "image_url", "image_url": {"url": url}}]}]) for i in range(CONCURRENT)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        elapsed = time.perf_counter() - started
    answered = sum(1 for r in results if not isinstance(r, BaseException) and r.choices[0].message.content)
    return elapsed, answered


def main() -> int:
    analysis.clear_cache()
    photo = photo_with_text()
    rows: list[tuple[str, str, str, str]] = []

    server = OfflineServer()
    started = time.perf_counter()
    base_url = server.start()
    server.wait_warm(timeout=120)
    rows.append(("OCR warm-up at start-up (background thread)", f"{time.perf_counter() - started:.2f} s", "-", ""))
    try:
        sdk = openai.OpenAI(base_url=base_url + "/v1", api_key="offline", max_retries=0, timeout=120)
        started = time.perf_counter()
        sdk.chat.completions.create(model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Hello"}])
        rows.append(("first SDK call, text only (SDK imports, connection)", f"{time.perf_counter() - started:.2f} s",
                     "-", ""))
        url = data_url(photo)
        first, answer = ask(sdk, url)
        ok = first < FIRST_TARGET_S and "PLATFORM" in answer.upper()
        rows.append(("(a) first answer, 1280x800 JPEG photo with text", f"{first:.2f} s", f"< {FIRST_TARGET_S} s",
                     "OK" if ok else "MISSED"))

        times = [ask(sdk, url)[0] * 1000 for _ in range(REPEATS)]
        median = statistics.median(times)
        rows.append((f"(b) cached repeat, median of {REPEATS} (max {max(times):.0f} ms)", f"{median:.1f} ms",
                     f"< {REPEAT_TARGET_MS:.0f} ms", "OK" if median < REPEAT_TARGET_MS else "MISSED"))

        elapsed, answered = asyncio.run(concurrent(base_url, url))
        rows.append((f"(c) {CONCURRENT} concurrent requests (AsyncOpenAI)", f"{answered}/{CONCURRENT} in {elapsed:.2f} s",
                     "all answered", "OK" if answered == CONCURRENT else "MISSED"))

        handwriting = REPO / "images" / "handwriting_en.jpg"
        if handwriting.is_file():
            with Image.open(handwriting) as img:
                size = f"{img.width}x{img.height}"
            seconds, _ = ask(sdk, data_url(handwriting.read_bytes()), "Transcribe the handwriting.")
            rows.append((f"first answer, images/handwriting_en.jpg ({size})", f"{seconds:.2f} s", "-", ""))
    finally:
        server.stop()

    print(f"Offline backend latency - openai {openai.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, model {DEFAULT_MODEL}")
    widths = [max(len(r[i]) for r in rows + [("measure", "result", "target", "")]) for i in range(4)]
    header = ("measure", "result", "target", "")
    for row in [header, tuple("-" * w for w in widths)] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0 if all(r[3] != "MISSED" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
