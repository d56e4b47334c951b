"""The offline backend before and after issue 10, in one run: throughput and latency at concurrency 32.

The previous design (a hand-written ``http.server``, commit ``71d055d``) is loaded from git into a temporary
module for the run (it is not kept in ``helpers/``); the new one is ``helpers.offline.server`` (Starlette +
uvicorn). Both run in this process on loopback, use the same analysis code (``helpers.offline.analysis``, whose
OCR is warmed up first), and get the same requests through one ``httpx.AsyncClient`` with 32 in flight:

* ``text``: a text-only question;
* ``cached image``: the same small PNG every time (analysis cache hit after the first request);
* ``uncached image``: a new random PNG every request (decode, OCR, faces, colours: a cache miss each time).

Run from the repository root::

    python benchmarks/server_old_vs_new.py                 # 640 / 640 / 96 requests per server and round
    python benchmarks/server_old_vs_new.py --scale 0.25 --rounds 1   # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import io
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from helpers.models import DEFAULT_MODEL  # noqa: E402
from helpers.offline import analysis  # noqa: E402
from helpers.offline.server import OfflineServer  # noqa: E402

OLD_COMMIT = "71d055d"
CONCURRENCY = 32


def load_old_server() -> object:
    """The previous server module, from git: its ``helpers.azure`` dependency is loaded from the same commit."""
    folder = Path(tempfile.mkdtemp(prefix="offline-old-"))
    for path, name in (("helpers/azure.py", "old_offline_azure"), ("helpers/offline/server.py", "old_offline_server")):
        source = subprocess.run(["git", "show", f"{OLD_COMMIT}:{path}"], cwd=REPO, check=True, capture_output=True,
                                text=True).stdout
        source = source.replace("from helpers import azure as azure_shapes", "import old_offline_azure as azure_shapes")
        (folder / f"{name}.py").write_text(source, encoding="utf-8")
    sys.path.insert(0, str(folder))
    for name in ("old_offline_azure", "old_offline_server"):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules["old_offline_server"]


def png_url(seed: int, size: tuple[int, int] = (96, 64)) -> str:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def body(question: str, url: str | None) -> dict:
    content: list[dict] = [{"type": "text", "text": question}]
    if url:
        content.append({"type": "image_url", "image_url": {"url": url, "detail": "low"}})
    return {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": content}]}


async def run(base_url: str, bodies: list[dict]) -> tuple[float, list[float], int]:
    """``(seconds, latencies, failures)`` of sending ``bodies`` with CONCURRENCY in flight."""
    gate = asyncio.Semaphore(CONCURRENCY)
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120,
                                 headers={"Authorization": "Bearer bench"}) as client:
        async def one(payload: dict) -> None:
            nonlocal failures
            async with gate:
                started = time.perf_counter()
                response = await client.post("/v1/chat/completions", json=payload)
                if response.status_code == 200 and response.json()["choices"][0]["message"]["content"]:
                    latencies.append(time.perf_counter() - started)
                else:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
    return time.perf_counter() - started, latencies, failures


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def measure(name: str, server: object, workloads: dict[str, list[dict]]) -> list[tuple]:
    rows = []
    server.start()  # type: ignore[attr-defined]
    try:
        base_url = server.base_url  # type: ignore[attr-defined]
        asyncio.run(run(base_url, [body("warm-up", None)] * CONCURRENCY))
        for kind, bodies in workloads.items():
            seconds, latencies, failures = asyncio.run(run(base_url, bodies))
            rows.append((name, kind, len(bodies), failures, len(latencies) / seconds,
                         percentile(latencies, 0.5) * 1000, percentile(latencies, 0.95) * 1000))
    finally:
        server.stop()  # type: ignore[attr-defined]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the request counts (default 1)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="old and new take turns this many times; the best round of each is shown (default 2)")
    args = parser.parse_args(argv)
    counts = {"text": int(640 * args.scale), "cached image": int(640 * args.scale),
              "uncached image": int(96 * args.scale)}
    analysis.warm_up()
    old = load_old_server()
    best: dict[tuple[str, str], tuple] = {}
    for turn in range(args.rounds):          # taking turns evens out whatever else the machine is doing
        for index, (name, make) in enumerate((("old (http.server)", old.OfflineServer),  # type: ignore[attr-defined]
                                              ("new (uvicorn)", OfflineServer))):
            cached = png_url(7)
            seed = 10_000 * (turn + 1) + 1000 * (index + 1)      # new images every round: really uncached
            workloads = {"text": [body(f"Question {i}?", None) for i in range(counts["text"])],
                         "cached image": [body(f"What is it? {i}", cached) for i in range(counts["cached image"])],
                         "uncached image": [body("What is it?", png_url(seed + i))
                                            for i in range(counts["uncached image"])]}
            for row in measure(name, make(warm_ocr=False), workloads):
                if (row[0], row[1]) not in best or row[4] > best[(row[0], row[1])][4]:
                    best[(row[0], row[1])] = row
    rows = sorted(best.values(), key=lambda row: (row[1], row[0] != "old (http.server)"))
    print(f"Offline backend, old vs new - concurrency {CONCURRENCY}, best of {args.rounds} rounds, httpx "
          f"{httpx.__version__}, Python {platform.python_version()}, {platform.machine()}")
    header = ("server", "workload", "requests", "failed", "answers/s", "p50 ms", "p95 ms")
    print("  ".join(f"{h:>18}" if i else f"{h:<18}" for i, h in enumerate(header)))
    for row in rows:
        print(f"{row[0]:<18}  {row[1]:>18}  {row[2]:>18}  {row[3]:>18}  {row[4]:>18.1f}  {row[5]:>18.0f}  "
              f"{row[6]:>18.0f}")
    return 0 if all(row[3] == 0 for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
