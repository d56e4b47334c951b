"""Load test of the offline backend: many concurrent Chat Completions requests through the official async SDK.

Sends ``--requests`` (500) requests with at most ``--concurrency`` (32) in flight, using ``openai.AsyncOpenAI``
with ``max_retries=0`` (every failure counts). The workload is deterministic and mixes what learners send:

* 40 % text-only questions;
* 50 % questions about course photos (``images/cat.jpg``, ``coffee.jpg``, ``rocket.jpg``, ``gdp_chart.png``), half
  sent inline as data URLs prepared by ``helpers.images.to_data_url``, half as the backend's own
  ``/images/NAME`` URLs: the same four images again and again, so the analysis cache is exercised;
* 10 % questions about six distinct generated images (a coloured card with a word on it), each sent about
  eight times: the first request of each is a cache miss (OCR, faces, colours), the others hits.

Reports answered / failed (by error type), latency p50 / p95 / max per kind and overall, total time and
throughput. Exits non-zero unless every request was answered (HTTP 200 with a non-empty answer).

Run from the repository root::

    python benchmarks/load_offline.py                      # starts a backend in this process (OCR warmed up)
    python benchmarks/load_offline.py --base-url http://127.0.0.1:8000   # an already running one
    python benchmarks/load_offline.py --requests 64 --concurrency 32 --cold

``tests/test_faults.py`` runs a small version (64 requests at concurrency 32) through :func:`run_load`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

COURSE_IMAGES = ("cat.jpg", "coffee.jpg", "rocket.jpg", "gdp_chart.png")
DISTINCT_IMAGES = 6
WORDS = ("MAPLE", "HARBOUR", "ORBIT", "LANTERN", "SUMMIT", "CANYON")


@dataclass(frozen=True)
class Job:
    """One request of the workload: its kind (for the per-kind table), question and image URL (or None)."""

    index: int
    kind: str                       # "text" | "course image" | "distinct image"
    question: str
    image_url: str | None


@dataclass
class LoadReport:
    """What :func:`run_load` measured. ``latencies`` are seconds per answered request, by kind."""

    requests: int
    concurrency: int
    answered: int = 0
    failures: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    total_seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def all_latencies(self) -> list[float]:
        return [value for values in self.latencies.values() for value in values]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method (NaN for no values).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5)
    2.0
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def distinct_image(number: int) -> bytes:
    """A 480x320 PNG: a coloured card with one large word (different for each ``number``)."""
    from PIL import Image, ImageDraw, ImageFont

    colours = ((231, 76, 60), (46, 134, 193), (39, 174, 96), (142, 68, 173), (243, 156, 18), (52, 73, 94))
    image = Image.new("RGB", (480, 320), colours[number % len(colours)])
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 100, 440, 220), fill="white")
    draw.text((70, 125), WORDS[number % len(WORDS)], fill="black", font=ImageFont.load_default(size=64))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def workload(base_url: str, total: int) -> list[Job]:
    """The deterministic list of ``total`` jobs described in the module docstring."""
    from helpers.images import to_data_url

    inline = {name: to_data_url(REPO / "images" / name) for name in COURSE_IMAGES}
    distinct = [to_data_url(distinct_image(n)) for n in range(DISTINCT_IMAGES)]
    jobs = []
    for i in range(total):
        slot = i % 10
        if slot < 4:
            jobs.append(Job(i, "text", f"Question {i}: what is a vision model good at?", None))
        elif slot < 9:
            name = COURSE_IMAGES[(i // 2) % len(COURSE_IMAGES)]      # each image both inline and by URL
            url = inline[name] if i % 2 == 0 else f"{base_url}/images/{name}"
            jobs.append(Job(i, "course image", f"Question {i}: what is in this picture?", url))
        else:
            jobs.append(Job(i, "distinct image", f"Question {i}: what word is written here?",
                            distinct[(i // 10) % DISTINCT_IMAGES]))
    return jobs


async def _run(base_url: str, jobs: list[Job], concurrency: int, timeout: float, model: str,
               report: LoadReport) -> None:
    import openai

    limit = asyncio.Semaphore(concurrency)
    async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="offline", max_retries=0,
                                  timeout=timeout) as sdk:
        async def one(job: Job) -> None:
            content: list[dict] = [{"type": "text", "text": job.question}]
            if job.image_url is not None:
                content.append({"type": "image_url", "image_url": {"url": job.image_url, "detail": "auto"}})
            async with limit:
                started = time.perf_counter()
                try:
                    response = await sdk.chat.completions.create(
                        model=model, messages=[{"role": "user", "content": content}], max_completion_tokens=300)
                except Exception as err:  # noqa: BLE001 - every failure is counted by its type
                    report.failures[type(err).__name__] += 1
                    return
                elapsed = time.perf_counter() - started
            if response.choices and (response.choices[0].message.content or "").strip():
                report.answered += 1
                report.latencies.setdefault(job.kind, []).append(elapsed)
            else:
                report.failures["EmptyAnswer"] += 1

        await asyncio.gather(*(one(job) for job in jobs))


def run_load(base_url: str, total: int = 500, concurrency: int = 32, *, timeout: float = 120.0,
             model: str | None = None) -> LoadReport:
    """Send ``total`` requests to the backend at ``base_url`` (``http://HOST:PORT``), ``concurrency`` at a time.

    >>> report = run_load("http://127.0.0.1:8000", total=64)      # doctest: +SKIP
    >>> report.answered, report.failed                            # doctest: +SKIP
    (64, 0)
    """
    from helpers.models import DEFAULT_MODEL

    base_url = base_url.rstrip("/")
    jobs = workload(base_url, total)
    report = LoadReport(requests=total, concurrency=concurrency)
    started = time.perf_counter()
    asyncio.run(_run(base_url, jobs, concurrency, timeout, model or DEFAULT_MODEL, report))
    report.total_seconds = time.perf_counter() - started
    return report


def format_report(report: LoadReport) -> str:
    """The table printed by ``main``."""
    rows = [("kind", "answered", "p50 ms", "p95 ms", "max ms")]
    kinds = sorted(report.latencies) + ["all"]
    for kind in kinds:
        values = report.all_latencies() if kind == "all" else report.latencies[kind]
        rows.append((kind, str(len(values)), f"{percentile(values, 0.5) * 1000:.0f}",
                     f"{percentile(values, 0.95) * 1000:.0f}", f"{max(values, default=math.nan) * 1000:.0f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failures = ", ".join(f"{name}: {count}" for name, count in sorted(report.failures.items())) or "none"
    throughput = report.answered / report.total_seconds if report.total_seconds else math.nan
    lines += ["",
              f"requests {report.requests}, concurrency {report.concurrency}: answered {report.answered}, "
              f"failed {report.failed} ({failures})",
              f"total {report.total_seconds:.2f} s, {throughput:.1f} answers/s, "
              f"p50 {percentile(report.all_latencies(), 0.5) * 1000:.0f} ms, "
              f"p95 {percentile(report.all_latencies(), 0.95) * 1000:.0f} ms"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--base-url", help="an offline backend that is already running (default: start one here)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    parser.add_argument("--cold", action="store_true", help="do not wait for the OCR warm-up before the run")
    args = parser.parse_args(argv)

    import openai

    from helpers.models import DEFAULT_MODEL
    from helpers.offline import analysis
    from helpers.offline.server import OfflineServer

    server = None
    base_url = args.base_url
    warm = ""
    if base_url is None:
        server = OfflineServer(warm_ocr=True)
        started = time.perf_counter()
        base_url = server.start()
        if not args.cold:
            server.wait_warm(timeout=180)
            warm = f", OCR warm-up {time.perf_counter() - started:.1f} s before the run"
    cache_before = analysis.cache_info()
    try:
        report = run_load(base_url, args.requests, args.concurrency, timeout=args.timeout)
    finally:
        if server is not None:
            server.stop()
    where = "in-process backend" if server is not None else base_url
    print(f"Offline backend load test - {where}{warm}; openai {openai.__version__}, Python "
          f"{platform.python_version()}, {platform.machine()}, model {DEFAULT_MODEL}")
    print(format_report(report))
    if server is not None:
        after = analysis.cache_info()
        print(f"analysis cache during the run: {after['misses'] - cache_before['misses']} misses (images analysed), "
              f"{after['hits'] - cache_before['hits']} hits")
    return 0 if report.answered == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
