"""What a class on one JupyterHub needs: memory per learner's session, and the course service's throughput.

Starts a real JupyterHub from the repository's ``jupyterhub_config.py`` (test mode, as tests/test_jupyterhub.py:
PyPI's jupyterhub, npm's configurable-http-proxy, free ports, a temporary folder), then:

1. **memory per session**: spawns ``--sessions`` learners' servers (default 3) and runs every code cell of lesson
   05 (the handwriting lesson: its requests through the hub service, and its local OCR cells in the kernel) in
   each one's real kernel, all at once; then reads the resident memory (RSS) of each learner's Jupyter server and
   kernel with psutil, and of the hub, its proxy and the course service;
2. **throughput**: ``--learners`` (default 30) hub users, each with their own hub token (created through the hub's
   REST API; no servers: it is the service being measured), run lesson 05's five requests at once through the
   OpenAI SDK against the service, as benchmarks/classroom.py does against a classroom server (same requests,
   same table); ``--kinds lesson own`` as there.

The load average is printed with every figure (the machine may be shared). Run from the repository root::

    python benchmarks/hub_class.py                          # about 5-10 minutes on 2 cores
    python benchmarks/hub_class.py --sessions 5 --learners 30 --kinds lesson own
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

import openai  # noqa: E402
import psutil  # noqa: E402
from classroom import Photos, Result, row, run_lesson  # noqa: E402  (benchmarks/classroom.py)
from hubprocess import Hub, load, missing_tools  # noqa: E402  (tests/hubprocess.py)

from helpers import models  # noqa: E402

MiB = 2 ** 20


def lesson_cells() -> list[str]:
    notebook = json.loads((REPO / "notebooks" / "05_handwriting_ocr.ipynb").read_text(encoding="utf-8"))
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def rss(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.NoSuchProcess:
        return 0


def cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def service_cpu(hub: Hub) -> float:
    return cpu_seconds(hub.service_pid())


def measure_sessions(hub: Hub, count: int) -> list[str]:
    names = [f"memory{i}" for i in range(1, count + 1)]
    hub.create_users(names)
    began = time.perf_counter()
    hub.spawn(names)
    lines = [f"{count} learners' servers spawned in {time.perf_counter() - began:.0f} s ({load()})"]
    kernels = {name: hub.start_kernel(name) for name in names}
    idle = {name: hub.session_rss(name) for name in names}
    idle_cpu = {name: sum(cpu_seconds(child.pid) for child in
                          psutil.Process(hub.server_pid(name)).children(recursive=True)) for name in names}
    cells = lesson_cells()

    def run(name: str) -> float:
        started = time.perf_counter()
        for source in cells:
            _, errors = hub.execute(name, kernels[name], source)
            if errors:
                raise RuntimeError(f"lesson 05 failed in {name}'s kernel:\n{errors[0][-2000:]}")
        return time.perf_counter() - started

    with ThreadPoolExecutor(count) as pool:
        seconds = list(pool.map(run, names))
    lines.append(f"lesson 05 (all {len(cells)} code cells) in {count} kernels at once: "
                 f"{min(seconds):.0f}-{max(seconds):.0f} s per learner ({load()})")
    lines.append("| learner | server MiB | kernel MiB | session MiB after lesson 05 | session MiB before | "
                 "kernel CPU s for the lesson |")
    lines.append("|---|---|---|---|---|---|")
    totals = []
    for name in names:
        server = psutil.Process(hub.server_pid(name))
        kernel = sum(rss(child.pid) for child in server.children(recursive=True))
        total = rss(server.pid) + kernel
        totals.append(total)
        used = sum(cpu_seconds(child.pid) for child in server.children(recursive=True)) - idle_cpu[name]
        lines.append(f"| {name} | {rss(server.pid) / MiB:.0f} | {kernel / MiB:.0f} | {total / MiB:.0f} | "
                     f"{idle[name] / MiB:.0f} | {used:.1f} |")
    lines.append(f"mean session after lesson 05: {sum(totals) / len(totals) / MiB:.0f} MiB; max "
                 f"{max(totals) / MiB:.0f} MiB ({load()})")
    return lines


def shared_memory(hub: Hub) -> str:
    assert hub.process is not None
    hub_rss = rss(hub.process.pid)
    proxy = sum(rss(p.pid) for p in psutil.Process(hub.process.pid).children()
                if "configurable-http-proxy" in " ".join(p.cmdline()))
    service = rss(hub.service_pid())
    return (f"shared processes: hub {hub_rss / MiB:.0f} MiB, proxy {proxy / MiB:.0f} MiB, course service "
            f"{service / MiB:.0f} MiB ({load()})")


def measure_throughput(hub: Hub, learners: int, kinds: list[str]) -> list[str]:
    names = [f"class{i:02d}" for i in range(1, learners + 1)]
    hub.create_users(names)
    tokens = [hub.token_for(name) for name in names]
    base_url = hub.service_url + "/v1"
    model = models.DEFAULT_MODEL
    lesson = Photos.lesson(model)
    lines = ["| run | requests | answered | errors | p50 s | p95 s | max s | lesson per learner p50 / max s | "
             "answers/s | wall s | service CPU s | load |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    warm = openai.OpenAI(base_url=base_url, api_key=tokens[0], max_retries=0, timeout=600)
    warm.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])
    for kind in kinds:
        photos = [lesson if kind == "lesson" else lesson.own(26_000 + i) for i in range(learners)]
        result = Result()
        clients = [openai.OpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=900) for token in tokens]
        before, cpu_before = load(), service_cpu(hub)
        started = time.perf_counter()
        with ThreadPoolExecutor(learners) as pool:
            for client, photo in zip(clients, photos, strict=True):
                pool.submit(run_lesson, client, model, photo, result)
        wall = time.perf_counter() - started
        cpu = service_cpu(hub) - cpu_before
        lines.append(row(f"{kind} photos, {learners} hub users", result, wall, cpu))
        lines.append(f"  (service CPU {cpu:.0f} s for {result.sent} requests; before: "
                     f"{before}; after: {load()}; errors: {dict(result.errors) or 'none'})")
        print(lines[-2], flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=3, help="real learners' sessions for the memory figures")
    parser.add_argument("--learners", type=int, default=30, help="hub users for the throughput figures")
    parser.add_argument("--kinds", nargs="+", choices=("lesson", "own"), default=["lesson"])
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"needs {missing}", file=sys.stderr)
        return 2
    report: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as folder:
        hub = Hub(Path(folder))
        try:
            hub.start()
            if args.sessions:
                report += measure_sessions(hub, args.sessions)
                print("\n".join(report), flush=True)
            if args.learners:
                report += measure_throughput(hub, args.learners, args.kinds)
            report.append(shared_memory(hub))
        finally:
            killed = hub.stop()
    print()
    print("\n".join(report))
    print(f"\nhub stopped (processes killed by id: {killed or 'none'}); {psutil.virtual_memory().total / 2**30:.0f} "
          f"GiB RAM, {psutil.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
