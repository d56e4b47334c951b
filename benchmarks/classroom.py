"""Capacity of a classroom server: 30 learners running the handwriting lesson (notebook 05) at once.

Starts ``python -m helpers.offline --classroom`` as a separate process (its own port and token, OCR warmed up),
then runs simulated learners, each a separate ``openai.OpenAI`` client with its own key ``TOKEN.learnerNN`` and
``max_retries=0`` (so every failure counts), sending the requests notebook 05 makes, in its order, one at a time
as a learner running the cells does:

1. cell 5: the English page as a data URL (``to_data_url``), "Transcribe the handwritten notes ...";
2. cell 7: the same with ``query_base64_image_description`` (image part built by the same helper);
3. cells 9 and 10: two text follow-ups carrying the history (the page, the previous answers);
4. cell 24: the Chinese page, "请识别这张照片中的手写笔记 ...".

Two kinds of photos:

* ``lesson``: the lesson's own two photos, identical for everyone (what a class running the notebook sends):
  the server analyses each once and answers the rest from its cache;
* ``own``: every learner's photos differ (one pixel changed per learner and scenario, re-encoded): nothing is
  cached, every learner's pages are OCR'd (a class photographing their own notes).

For each, one learner alone and then ``--learners`` (30) at once: latency p50 / p95 / max per request, the time
for the whole lesson per learner, throughput, and errors (requests sent = answered with a non-empty answer,
else the script exits non-zero). Optionally ``--flood N`` adds one more learner who sends a single N-image
request at the same time (fair scheduling: it must not hold the others up).

``--before-after`` runs the same class twice in one run, each against a fresh server with an empty analysis
folder: first with the OCR as it was before issue 26 (one RapidOCR engine per process, so the server's two
worker slots took turns on one engine and OCR used one core; ONNX Runtime's memory arena off), then as the
course runs it (one engine per core, :data:`helpers.ocr.OCR_ENGINES`, and the arena on). ``--rounds N``
alternates them N times, since other work on a shared machine moves the figures; ``--old-ocr FOLDER`` adds,
first in each round, a server with issue 19's old OCR (rapidocr_onnxruntime 1.4.x installed in FOLDER beside
the new one). ``--profile`` first times one analysis of a learner's page step by step (decode, detection,
recognition, the rest), in this process. Each row also gives the server's own CPU seconds, which other work on
the machine moves far less than the wall times.

Run from the repository root (takes a few minutes on 2 cores)::

    python benchmarks/classroom.py
    python benchmarks/classroom.py --learners 30 --kinds lesson own --flood 100
    python benchmarks/classroom.py --kinds own --before-after --rounds 2 --profile
"""

from __future__ import annotations

import argparse
import base64
import io
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import openai  # noqa: E402
from PIL import Image  # noqa: E402

from helpers import models  # noqa: E402
from helpers.chat import image_content, user_message  # noqa: E402
from helpers.images import to_data_url  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_offline import percentile  # noqa: E402  (nearest-rank quantile, shared with the load benchmark)

TOKEN = "class-benchmark-" + base64.urlsafe_b64encode(os.urandom(9)).decode()
PROMPT_EN = "Transcribe the handwritten notes in this photo exactly, line by line. Reply with the transcription only."
FOLLOW_UPS = ("Which fine-tuning methods do these notes mention, and in which year was each published?",
              "Explain LoRA from these notes in two sentences.")
PROMPT_ZH = "请识别这张照片中的手写笔记，逐行转写，只输出文字。"




def _altered(data_url: str, seed: int) -> str:
    """The same photo with one pixel changed (so its analysis is not cached), as a JPEG data URL."""
    raw = base64.b64decode(data_url.split(",", 1)[1])
    with Image.open(io.BytesIO(raw)) as picture:
        rgb = picture.convert("RGB")
    rgb.putpixel((seed % rgb.width, (seed // rgb.width) % rgb.height), (seed % 256, 0, 255 - seed % 256))
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


@dataclass
class Photos:
    """The two pages and the image parts the lesson's cells send."""

    en_url: str
    en_part: dict[str, Any]
    zh_part: dict[str, Any]

    @classmethod
    def lesson(cls, model: str) -> Photos:
        en = str(REPO / "images" / "handwriting_en.jpg")
        zh = str(REPO / "images" / "handwriting_zh.jpg")
        return cls(to_data_url(en, model=model), image_content(en, "auto", model, 0)[0],
                   image_content(zh, "auto", model, 0)[0])

    def own(self, seed: int) -> Photos:
        en = _altered(self.en_url, seed)
        zh = _altered(self.zh_part["image_url"]["url"], seed)
        return Photos(en, {"type": "image_url", "image_url": {"url": en, "detail": "auto"}},
                      {"type": "image_url", "image_url": {"url": zh, "detail": "auto"}})


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    lesson_seconds: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    answered: int = 0
    flood: list[int] = field(default_factory=lambda: [0, 0, 0])     # the flooder's answered, 429, other errors
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_lesson(client: openai.OpenAI, model: str, photos: Photos, result: Result) -> None:
    """One learner runs the lesson's five requests in order (follow-ups carry the real earlier answers)."""
    limit = {models.token_limit_field(model, "compatible"): 1000}
    started = time.perf_counter()

    def ask(messages: list[dict[str, Any]]) -> str | None:
        with result.lock:
            result.sent += 1
        began = time.perf_counter()
        try:
            answer = client.chat.completions.create(model=model, messages=messages, **limit)  # type: ignore[arg-type]
            text = answer.choices[0].message.content or ""
        except openai.APIError as err:
            with result.lock:
                result.errors[f"{type(err).__name__} {getattr(err, 'status_code', '')}".strip()] += 1
            return None
        with result.lock:
            result.latencies.append(time.perf_counter() - began)
            if text:
                result.answered += 1
            else:
                result.errors["empty answer"] += 1
        return text

    ask([{"role": "user", "content": [{"type": "text", "text": PROMPT_EN},
                                      {"type": "image_url", "image_url": {"url": photos.en_url}}]}])
    messages = [user_message(PROMPT_EN, [photos.en_part])]
    reply = ask(messages)
    for question in FOLLOW_UPS:
        if reply is None:
            break
        messages = [*messages, {"role": "assistant", "content": reply}, user_message(question, [])]
        reply = ask(messages)
    ask([user_message(PROMPT_ZH, [photos.zh_part])])
    with result.lock:
        result.lesson_seconds.append(time.perf_counter() - started)


def run_class(base_url: str, model: str, photos: list[Photos], flood: int = 0,
              flood_mode: str = "one") -> tuple[Result, float, float | None]:
    """Every learner at once (one thread and one client each); returns the result, the wall time, and the
    flooding learner's own latency (if any)."""
    result = Result()
    clients = [openai.OpenAI(base_url=base_url, api_key=f"{TOKEN}.learner{i:02d}", max_retries=0, timeout=600)
               for i in range(len(photos))]
    threads = [threading.Thread(target=run_lesson, args=(c, model, p, result)) for c, p in zip(clients, photos, strict=True)]
    flood_seconds: list[float] = []
    if flood:
        def flooder() -> None:
            parts = [{"type": "image_url", "image_url": {"url": _altered(photos[0].en_url, 10_000 + i)}}
                     for i in range(flood)]
            client = openai.OpenAI(base_url=base_url, api_key=f"{TOKEN}.flooder", max_retries=0, timeout=1800)
            began = time.perf_counter()

            def one(request_parts: list[dict[str, Any]]) -> None:
                try:
                    client.chat.completions.create(model=model, messages=[user_message("Describe.", request_parts)])
                    result.flood[0] += 1
                except openai.APIError as err:
                    result.flood[1 if getattr(err, "status_code", None) == 429 else 2] += 1
            if flood_mode == "one":
                one(parts)
            else:                      # "many": every image its own request, all at once
                many = [threading.Thread(target=one, args=([p],)) for p in parts]
                for thread in many:
                    thread.start()
                for thread in many:
                    thread.join()
            flood_seconds.append(time.perf_counter() - began)
        threads.insert(0, threading.Thread(target=flooder))
    if flood:
        threads[0].start()
        time.sleep(2.0)               # the big request is in (and being analysed) before the class starts
    started = time.perf_counter()
    for thread in threads[1 if flood else 0:]:
        thread.start()
    for thread in threads[1 if flood else 0:]:
        thread.join()
    wall = time.perf_counter() - started          # the class's time, not the flood's
    if flood:
        threads[0].join()
    return result, wall, (flood_seconds[0] if flood_seconds else None)


#: The server with the OCR as it was before issue 26: one RapidOCR engine in the process (``VISION_OCR_ENGINES=1``,
#: set below; helpers.ocr had a single engine behind one lock, so analyses took turns on it) and ONNX Runtime's
#: memory arena off (RapidOCR's own setting). Everything else is today's code.
BEFORE_ISSUE_26 = ("import sys, helpers.ocr as ocr; "
                   "ocr.use_memory_arena(False); "
                   "from helpers.offline.__main__ import main; raise SystemExit(main(sys.argv[1:]))")


#: The server with issue 19's old OCR, rapidocr_onnxruntime 1.4.x installed in the folder given as ``argv[1]``
#: (``pip install --no-deps --target FOLDER 'rapidocr_onnxruntime==1.4.4'``): one engine, one lock, PP-OCRv4.
OLD_OCR = ("import sys; sys.path.insert(0, 'benchmarks'); import ocr_old_vs_new; "
           "ocr_old_vs_new.use_old_ocr(sys.argv.pop(1)); "
           "from helpers.offline.__main__ import main; raise SystemExit(main(sys.argv[1:]))")


def start_server(workers: int | None, plain: bool = False, *, before: bool | None = None,
                 store: str | None = None, old_ocr: str | None = None) -> tuple[subprocess.Popen[str], str]:
    """``python -m helpers.offline --classroom`` on a free port, as its own process; waits until it listens.
    ``before``: True for the OCR from before issue 26 (:data:`BEFORE_ISSUE_26`), False for one engine per core
    whatever the environment says, None for the environment's setting; ``store``: its analysis
    folder (``VISION_OFFLINE_CACHE``), else the user's own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch = ["-c", OLD_OCR, old_ocr] if old_ocr else ["-c", BEFORE_ISSUE_26] if before else ["-m", "helpers.offline"]
    command = [sys.executable, *launch, "--port", str(port)] + ([] if plain else ["--classroom"])
    if workers and not plain:
        command += ["--workers", str(workers)]
    env = {**os.environ, "VISION_CLASSROOM_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
    if before:            # the OCR before issue 26: one engine in the process, so analyses took turns on it
        env["VISION_OCR_ENGINES"] = "1"
    elif before is not None:
        env.pop("VISION_OCR_ENGINES", None)
    if store is not None:
        env["VISION_OFFLINE_CACHE"] = store
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Press Ctrl-C"):
            break
    else:
        raise SystemExit("the classroom server did not start:\n" + (process.stdout.read() or ""))
    threading.Thread(target=lambda: process.stdout and process.stdout.read(), daemon=True).start()
    return process, f"http://127.0.0.1:{port}/v1"


def profile_page(photos: Photos, learners: int) -> list[str]:
    """One analysis of a learner's own English page, step by step, in this process (wall and this thread's CPU
    seconds, the median of three after a warm read): what a page costs the server's cores, and so the least
    time ``learners`` pages sent at once need on this machine's cores."""
    import statistics

    import numpy as np

    from helpers import ocr
    from helpers.offline import analysis

    data = base64.b64decode(photos.en_url.split(",", 1)[1])
    analysis.warm_up()
    steps: dict[str, list[tuple[float, float]]] = {}

    def timed(name: str, work: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        value = work()
        steps.setdefault(name, []).append((time.perf_counter() - wall, time.thread_time() - cpu))
        return value

    arena = "EngineConfig.onnxruntime.enable_cpu_mem_arena"
    engines: dict[str, Any] = {}
    read: dict[str, Any] = {}
    for label, on in (("before issue 26, arena off", False), ("the course, arena on", True)):
        saved = ocr._ENGINE_PARAMS[arena]
        ocr._ENGINE_PARAMS[arena] = on
        try:
            engines[label] = ocr._create_engine()       # a separate engine for this comparison only
        finally:
            ocr._ENGINE_PARAMS[arena] = saved
    for _ in range(4):
        rgb = timed("decode the JPEG (load_rgb)", lambda: ocr.load_rgb(data))
        bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
        for label, engine in engines.items():
            found = timed(f"RapidOCR ({label})", lambda bgr=bgr, engine=engine: engine(bgr, use_cls=False))
            read[label] = (found.txts, found.boxes.tolist(), found.scores)
            steps.setdefault(f"  of which detection, 960 px ({label})", []).append((found.elapse_list[0], math.nan))
            steps.setdefault(f"  of which recognition, {len(found.txts)} lines ({label})", []).append(
                (found.elapse_list[2], math.nan))
        timed("faces, colours, perceptual hash", lambda rgb=rgb: (analysis.detect_faces(rgb), analysis.analyse_colours(rgb),
                                                                 analysis.imagehash.phash(rgb)))
        analysis.clear_cache()
        timed("analyze() of the bytes, all steps (the course)", lambda: analysis.analyze(data))
    lines = [f"One learner's page ({rgb.width}x{rgb.height} JPEG, {len(data) // 1024} KB), this process, "
             f"{ocr.engine_description()}:", "", "| step | wall s | CPU s (this thread) |", "|---|---|---|"]
    for name, runs in steps.items():
        wall = statistics.median(w for w, _ in runs[1:])
        cpu = statistics.median(c for _, c in runs[1:])
        lines.append(f"| {name} | {wall:.3f} | {'' if math.isnan(cpu) else f'{cpu:.3f}'} |")
    others = statistics.median(c for _, c in steps["faces, colours, perceptual hash"][1:])
    page = statistics.median(c for _, c in steps["analyze() of the bytes, all steps (the course)"][1:]) + others
    ocr_cpu = statistics.median(c for _, c in steps["RapidOCR (before issue 26, arena off)"][1:])
    cores = os.cpu_count() or 1
    lines += ["", f"A page costs about {page:.2f} CPU s (OCR, plus faces, colours and hash on the other thread): "
              f"{learners} learners sending a page at once need at least {learners * page / cores:.1f} s of all "
              f"{cores} cores before the last page is read; with one OCR engine at a time (before issue 26) at "
              f"least {learners * ocr_cpu:.1f} s, the OCR alone (arena off). Load average now {os.getloadavg()[0]:.1f}.",
              "", "Arena on and off read the same text, boxes and scores: "
              f"{len({repr(value) for value in read.values()}) == 1}."]
    return lines


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process ``pid`` has used, all its threads (Linux ``/proc``; else NaN)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def row(label: str, result: Result, wall: float, cpu: float = math.nan) -> str:
    lat = result.latencies
    return (f"| {label} | {result.sent} | {result.answered} | {sum(result.errors.values())} | "
            f"{percentile(lat, 0.5):.2f} | {percentile(lat, 0.95):.2f} | {max(lat, default=math.nan):.2f} | "
            f"{percentile(result.lesson_seconds, 0.5):.1f} / {max(result.lesson_seconds, default=math.nan):.1f} | "
            f"{result.answered / wall:.2f} | {wall:.1f} | {cpu:.1f} | {os.getloadavg()[0]:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--kinds", nargs="+", choices=("lesson", "own"), default=["lesson", "own"])
    parser.add_argument("--flood", type=int, default=0, help="also one learner sending one request of N images")
    parser.add_argument("--flood-mode", choices=("one", "many"), default="one",
                        help="one request of N images (default), or N single-image requests at once")
    parser.add_argument("--workers", type=int, default=None, help="the server's --workers (default: its own)")
    parser.add_argument("--plain", action="store_true",
                        help="for comparison: the server without --classroom (no token, no fair scheduling)")
    parser.add_argument("--before-after", action="store_true",
                        help="run the class against the OCR from before issue 26 (one engine) and today's (one per core)")
    parser.add_argument("--rounds", type=int, default=1, help="with --before-after: how many times to alternate them")
    parser.add_argument("--old-ocr", metavar="FOLDER",
                        help="also a server with issue 19's old OCR, rapidocr_onnxruntime 1.4.x installed in FOLDER "
                             "(pip install --no-deps --target FOLDER 'rapidocr_onnxruntime==1.4.4')")
    parser.add_argument("--profile", action="store_true", help="first, one page's analysis step by step")
    args = parser.parse_args(argv)

    model = models.DEFAULT_MODEL
    lesson = Photos.lesson(model)
    lines = ["| run | requests | answered | errors | p50 s | p95 s | max s | lesson per learner p50 / max s | "
             "answers/s | wall s | server CPU s | load |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    if args.profile:
        print("\n".join(profile_page(lesson.own(1), args.learners)) + "\n", flush=True)
    load_before = os.getloadavg()
    failed = False
    notes: list[str] = []
    compare = args.before_after or bool(args.old_ocr)
    servers: list[bool | str] = ((["old"] if args.old_ocr else []) + ([True, False] if args.before_after else [False])) \
        * args.rounds if compare else [False]
    for variant in servers:
        old_ocr = args.old_ocr if variant == "old" else None
        before = variant is True or (old_ocr is not None)
        with tempfile.TemporaryDirectory(prefix="classroom-analysis-") as store:
            process, base_url = start_server(args.workers, args.plain, before=before if compare else None,
                                             store=store if compare else None, old_ocr=old_ocr)
            try:
                failed |= run_kinds(args, model, lesson, (base_url, process.pid),
                                    ("old" if old_ocr else before) if compare else None, lines, notes)
            finally:
                process.terminate()
                process.wait(timeout=30)
    load_after = os.getloadavg()
    print()
    print("\n".join(lines))
    for note in notes:
        print("- " + note)
    print(f"\nserver: python -m helpers.offline {'' if args.plain else '--classroom '}(separate process, workers "
          f"{args.workers or 'default = cores'}); {os.cpu_count()} cores; load average before "
          f"{load_before[0]:.1f}, after {load_after[0]:.1f} (1 min); the load column: 1-minute load average at "
          "the end of that run; server CPU s: what the server process used during that run, all threads (other "
          "work on the machine moves it far less than the wall times)")
    return 1 if failed else 0


def run_kinds(args: argparse.Namespace, model: str, lesson: Photos, server: tuple[str, int],
              before: bool | str | None, lines: list[str], notes: list[str]) -> bool:
    """The runs of ``args.kinds`` (one learner, then the class) against one server (its URL and process id);
    True if any failed."""
    base_url, pid = server
    failed = False
    warm = openai.OpenAI(base_url=base_url, api_key=f"{TOKEN}.warmup", max_retries=0, timeout=600)
    warm.chat.completions.create(model=model, messages=[user_message("hello", [lesson.zh_part])])
    for kind in args.kinds:
        for learners in (1, args.learners):
            seed = 1000 * learners + (7 if kind == "own" else 0)
            photos = [lesson if kind == "lesson" else lesson.own(seed + i) for i in range(learners)]
            flood = args.flood if learners > 1 else 0
            cpu = cpu_seconds(pid)
            result, wall, flood_seconds = run_class(base_url, model, photos, flood, args.flood_mode)
            cpu = cpu_seconds(pid) - cpu
            label = f"{kind} photos, {learners} learner{'s' if learners > 1 else ''}" + (
                (f" + one {flood}-image request" if args.flood_mode == "one" else
                 f" + {flood} single-image requests at once from one learner") if flood else "") + (
                " (plain server)" if args.plain else "") + (
                "" if before is None else " — old OCR: rapidocr_onnxruntime 1.4" if before == "old" else
                " — before: one OCR engine, no arena" if before else " — after: one engine per core, arena")
            lines.append(row(label, result, wall, cpu))
            print(lines[-1], flush=True)
            if flood_seconds is not None:
                answered, refused, other = result.flood
                notes.append(f"{label}: the flood took {flood_seconds:.1f} s; its requests: {answered} answered, "
                             f"{refused} refused with 429 (its own queue full), {other} other errors")
                failed |= other > 0
            failed |= result.answered != result.sent or bool(result.errors)
            if result.errors:
                notes.append(f"{label}: errors {dict(result.errors)}")
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
