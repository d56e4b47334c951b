"""The course's local OCR before and after issue 19, side by side in one run: character error rates and latency.

"old" is ``rapidocr_onnxruntime`` 1.4.4 (PP-OCRv4 models) with the settings the course used until issue 19
(one ONNX Runtime thread, detection at most 960 px, box threshold 0.4, no direction classifier); "new" is
``rapidocr`` 3.x as :mod:`helpers.ocr` runs it (PP-OCRv6 models; the direction classifier only for text
boxes RapidOCR turns by 90 degrees). Both go through the same ``helpers.ocr.transcribe`` (same resizing, reading
order) and are scored with the course's ``character_error_rate`` (NFKC, whitespace runs collapsed, no spaces
between CJK characters). Two more columns show the new engine without the classifier and with it on every line.

Then the offline backend's latency (``benchmarks/offline_latency.py``: first answer for a 1-MP photo with text,
and for images/handwriting_en.jpg) in fresh processes, old and new alternately, with the on-disk analysis store
off so every first answer really runs OCR.

The old package cannot be a course dependency (it declares Requires-Python <3.13), so install it beside the new
one for the measurement only, without its dependencies (its ``opencv-python`` would overwrite the headless cv2)::

    pip install --no-deps --target /tmp/old-ocr 'rapidocr_onnxruntime==1.4.4'
    python benchmarks/ocr_old_vs_new.py --old /tmp/old-ocr

Exits non-zero if the new engine reads a case worse than the old one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from helpers import ocr  # noqa: E402
from helpers import ocr as ocr_engine  # noqa: E402  (the engine section of helpers/ocr.py)

#: The course's options for rapidocr_onnxruntime 1.4.x, as helpers/ocr.py had them before issue 19.
OLD_OPTIONS = {"intra_op_num_threads": 1, "inter_op_num_threads": 1, "det_limit_type": "max",
               "det_limit_side_len": 960, "det_box_thresh": 0.4, "use_cls": False}
CASES = ("handwriting_en", "handwriting_zh", "rotated_90")
REPEATS = 3


def _old_reader(old_path: str | None) -> tuple[Callable, Callable, str]:
    """read_boxes and get_engine replacements backed by rapidocr_onnxruntime, and its description."""
    if old_path:
        sys.path.insert(0, old_path)
    from importlib import metadata

    from rapidocr_onnxruntime import RapidOCR as OldRapidOCR

    lock = threading.Lock()
    engine: list = []

    def get_engine():
        with lock:
            if not engine:
                engine.append(OldRapidOCR(**OLD_OPTIONS))
            return engine[0]

    def read_boxes(bgr: np.ndarray) -> list:
        old = get_engine()
        with lock:
            result, _ = old(np.ascontiguousarray(bgr))
        return [(np.asarray(box, dtype=np.float64), text, score) for box, text, score in (result or [])]

    dist = metadata.distribution("rapidocr_onnxruntime") if not old_path else \
        next(metadata.distributions(name="rapidocr_onnxruntime", path=[old_path]))
    models = sorted(p.name for p in (Path(dist.locate_file("rapidocr_onnxruntime")) / "models").glob("*.onnx"))
    return read_boxes, get_engine, f"rapidocr_onnxruntime {dist.version} ({', '.join(models)})"


def _new_reader(cls: str) -> Callable:
    """The new engine with the classifier for turned boxes only ("turned"), never ("off") or always ("all")."""
    if cls == "turned":
        return ocr_engine.read_boxes

    def read_boxes(bgr: np.ndarray) -> list:
        with ocr_engine.engine_in_use() as engine:
            return ocr_engine._found(engine(np.ascontiguousarray(bgr), use_cls=cls == "all"))
    return read_boxes


def _cases() -> dict[str, tuple[Path, str]]:
    labels = json.loads((REPO / "images" / "eval" / "labels.json").read_text(encoding="utf-8"))
    by_id = {case["id"]: case for case in labels["cases"]}
    return {name: (REPO / "images" / by_id[name]["images"][0], by_id[name]["expected"]) for name in CASES}


def measure_cer(reader: Callable) -> dict[str, tuple[float, float, str]]:
    """(CER, median seconds of REPEATS reads after one warm read, text) per case, through helpers.ocr."""
    saved = ocr.read_boxes
    ocr.read_boxes = reader
    try:
        results = {}
        for name, (path, expected) in _cases().items():
            text = ocr.transcribe(path)          # also loads the models and plans this image's shapes
            seconds = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                again = ocr.transcribe(path)
                seconds.append(time.perf_counter() - started)
                assert again == text, "OCR is not deterministic"
            results[name] = (ocr.character_error_rate(expected, text), statistics.median(seconds), text)
        return results
    finally:
        ocr.read_boxes = saved


def run_latency(which: str, old_path: str | None) -> dict[str, str]:
    """benchmarks/offline_latency.py in a fresh process with the old or new OCR; its result column by measure."""
    env = {**os.environ, "VISION_OFFLINE_CACHE": "off", "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(Path(__file__)), "--latency-child", which] + (["--old", old_path] if old_path else [])
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    rows = {}
    for line in done.stdout.splitlines():
        match = re.match(r"(\(a\) first answer.*?|first answer, images/handwriting_en\.jpg.*?|OCR warm-up.*?)"
                         r"\s{2,}(\d+\.\d+ s)", line)
        if match:
            rows[match.group(1).strip()] = match.group(2)
    if not rows:
        raise RuntimeError(f"offline_latency.py ({which}) printed no results:\n{done.stdout}\n{done.stderr[-2000:]}")
    return rows


def use_old_ocr(old_path: str | None) -> str:
    """Make this process's ``helpers.ocr`` read with rapidocr_onnxruntime 1.4.x (one engine, one lock, as before
    issue 19): ``read_boxes``, ``get_engine`` and ``warm_up`` (so the server's warm-up loads the old models, not
    the new ones). Returns the old package's description. Used by the latency child and by
    ``benchmarks/classroom.py --old-ocr``."""
    from PIL import Image, ImageDraw

    reader, get_engine, name = _old_reader(old_path)
    ocr.read_boxes = reader
    ocr.get_engine = get_engine

    def warm_up(sizes: tuple[tuple[int, int], ...] = ocr.WARM_UP_SIZES, **_: object) -> None:
        get_engine()
        for size in sizes:
            page = Image.new("RGB", size, "white")
            ImageDraw.Draw(page).text((40, 40), "Warm up: 0123456789", fill="black")
            ocr.ocr_lines(page)
    ocr.warm_up = warm_up
    return name


def latency_child(which: str, old_path: str | None) -> int:
    if which == "old":
        use_old_ocr(old_path)
    sys.path.insert(0, str(REPO / "benchmarks"))
    import offline_latency
    return offline_latency.main()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", help="folder where rapidocr_onnxruntime 1.4.x is installed (pip --target)")
    parser.add_argument("--rounds", type=int, default=2, help="latency runs per engine, alternating (default 2)")
    parser.add_argument("--latency-child", choices=("old", "new"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.latency_child:
        return latency_child(args.latency_child, args.old)

    old_reader, _, old_name = _old_reader(args.old)
    columns = {
        f"old: {old_name}, course settings": measure_cer(old_reader),
        "new, classifier off": measure_cer(_new_reader("off")),
        "new, classifier on every line": measure_cer(_new_reader("all")),
        "new, classifier for turned boxes (the course)": measure_cer(_new_reader("turned")),
    }
    print(f"OCR old vs new - Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d')}")
    print(f"new: {ocr_engine.engine_description()}")
    print("\nCharacter error rate (seconds per read, median of 3 after a warm read):")
    for title, results in columns.items():
        cells = ", ".join(f"{name} {cer:.3f} ({seconds:.2f} s)" for name, (cer, seconds, _) in results.items())
        print(f"  {title}: {cells}")
    old_results, new_results = next(iter(columns.values())), columns["new, classifier for turned boxes (the course)"]
    print("\nNew texts:")
    for name, (_, _, text) in new_results.items():
        print(f"  {name}: {text!r}")

    print("\nOffline backend, benchmarks/offline_latency.py in fresh processes (analysis store off):")
    for round_ in range(1, args.rounds + 1):
        for which in ("old", "new"):
            rows = run_latency(which, args.old)
            print(f"  round {round_} {which}: " + "; ".join(f"{k}: {v}" for k, v in rows.items()))

    worse = [name for name in CASES if new_results[name][0] > old_results[name][0] + 1e-9]
    if worse:
        print(f"\nThe new OCR reads worse than the old on: {', '.join(worse)}")
    return 1 if worse else 0


if __name__ == "__main__":
    raise SystemExit(main())
