"""How fast is the offline backend's image analysis? Prints a small table of timings.

Run from the repository root:  python benchmarks/offline_analysis.py  [--repeats 5]

The test photo is scikit-image's astronaut sample upscaled to 1200x900 (about 1.1 megapixels) with three lines
of text drawn on it in DejaVu Sans (the font matplotlib ships). Targets on a 2-core machine: the first
analysis of a new photo with a warm engine under 1.5 s, a cached repeat under 50 ms. The "cold" row runs in
a fresh process (models loaded, never run) to show what ``analysis.warm_up()`` saves the server.
scikit-image is needed here only for the sample photo (it is not a runtime dependency of helpers).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FIRST_TARGET_S = 1.5
CACHED_TARGET_S = 0.050
TEXT = ("Mission log, day 12", "Oxygen levels nominal", "Return window opens Friday")


def test_photo(variant: int = 0) -> bytes:
    """The 1200x900 PNG described above; ``variant`` changes one word so each variant is a new image."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont
    photo = Path(__file__).resolve().parents[1] / "images" / "astronaut.jpg"  # NASA, public domain
    with Image.open(photo) as source:
        img = source.convert("RGB").resize((1200, 900), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")), 40)
    draw.rectangle((600, 650, 1190, 890), fill="white")
    lines = list(TEXT)
    lines[0] = f"Mission log, day {12 + variant}"
    for i, line in enumerate(lines):
        draw.text((620, 670 + i * 70), line, fill="black", font=font)
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


_cpu_log: list[float] = []


def timed(fn, *args) -> float:
    """Wall-clock seconds of ``fn(*args)``; its CPU seconds (all threads) go to ``_cpu_log``."""
    start, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    _cpu_log.append(time.process_time() - cpu)
    return time.perf_counter() - start


def timed_cpu(fn, *args) -> tuple[float, float]:
    """(wall, cpu) seconds of ``fn(*args)``."""
    wall = timed(fn, *args)
    return wall, _cpu_log[-1]


def median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def cold_run() -> dict[str, float]:
    """In this (fresh) process: import, load the models, analyse once without warm-up."""
    start = time.perf_counter()
    from helpers import ocr
    from helpers.offline import analysis

    imported = time.perf_counter() - start
    loaded = timed_cpu(ocr.get_engine)
    photo = test_photo()
    first = timed_cpu(analysis.analyze, photo)
    return {"import": (imported, float("nan")), "load": loaded, "first_cold": first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="uncached analyses for the median (default 5)")
    parser.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child:
        print(json.dumps(cold_run()))
        return

    child = subprocess.run([sys.executable, __file__, "--cold-child"], capture_output=True, text=True, check=True)
    cold = {key: tuple(value) for key, value in json.loads(child.stdout.strip().splitlines()[-1]).items()}

    import imagehash

    from helpers import ocr
    from helpers.offline import analysis, answers

    load = timed_cpu(ocr.get_engine)
    warm = timed_cpu(analysis.warm_up)
    photo = test_photo()
    first_warm = timed_cpu(analysis.analyze, photo)
    cached = median_pair([timed_cpu(analysis.analyze, photo) for _ in range(20)])
    report = analysis.analyze(photo)
    assert report.text().splitlines() == list(TEXT), report.text()
    assert len(report.faces) == 1, report.faces

    uncached = median_pair([timed_cpu(analysis.analyze, test_photo(v)) for v in range(1, args.repeats + 1)])

    rgb = ocr.load_rgb(photo)
    stages = {
        "decode": lambda: ocr.load_rgb(photo),
        "ocr": lambda: ocr.ocr_lines(rgb),
        "faces": lambda: analysis.detect_faces(rgb),
        "colours": lambda: analysis.dominant_colours(rgb),
        "phash": lambda: imagehash.phash(rgb),
        "compose": lambda: answers.compose("Describe this image.", [report], [photo]),
    }
    stage_times = {name: median_pair([timed_cpu(fn) for _ in range(3)]) for name, fn in stages.items()}

    rows = [
        ("import helpers.offline.analysis (fresh process)", cold["import"], None),
        ("load OCR models (fresh process)", cold["load"], None),
        ("first analysis, cold engine (fresh process)", cold["first_cold"], None),
        ("load OCR models (this process)", load, None),
        ("analysis.warm_up()", warm, None),
        ("first analysis, warm engine", first_warm, FIRST_TARGET_S),
        ("cached repeat (median of 20)", cached, CACHED_TARGET_S),
        (f"new photo, warm engine (median of {args.repeats})", uncached, FIRST_TARGET_S),
        *((f"  stage: {name}", pair, None) for name, pair in stage_times.items()),
    ]
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Offline analysis of a 1200x900 photo with 3 text lines ({os.cpu_count()} CPUs, load average "
          f"{load_avg:.1f} at the end)")
    print("wall = elapsed seconds (slower when other processes share the CPUs); cpu = CPU seconds used")
    print(f"{'step':52} {'wall s':>8} {'cpu s':>8}  target (wall)")
    for name, (wall, cpu), target in rows:
        verdict = "" if target is None else f"< {target:g} s " + ("ok" if wall < target else "OVER")
        print(f"{name:52} {wall:8.3f} {cpu:8.3f}  {verdict}")


if __name__ == "__main__":
    main()
