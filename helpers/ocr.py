"""Local OCR with RapidOCR, and the character error rate used to score any transcription.

Taught in notebooks/05_handwriting_ocr.ipynb, where a real model's transcription of a handwritten page is
compared with this local OCR and with a ground-truth transcript. The offline backend
(``helpers.offline.analysis``) uses the same functions to answer "what does it say?".

The engine (the first section below) is RapidOCR 3.x (the ``rapidocr`` package) on ONNX Runtime. Its wheel
bundles three ONNX models: PP-OCRv6 small text detection and recognition (Chinese, English and other
Latin-script languages) and the 0/180-degree text-direction classifier. Exactly those bundled files are loaded
(:func:`bundled_models`), so nothing is ever downloaded. Source: the files in ``rapidocr/models``, its ``config.yaml`` and
``default_models.yaml`` (version 3.10.0, checked 2026-12-07).

>>> from helpers.ocr import transcribe, character_error_rate
>>> text = transcribe("handwritten_note.jpg")                    # doctest: +SKIP
>>> character_error_rate("Hello world", "Hel1o world")
0.09090909090909091
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein

from helpers.errors import ConfigurationError, UnsupportedImageError
from helpers.image_metadata import normalise_mode
from helpers.images import load_image
from helpers.writing import CJK_NO_SPACE

if TYPE_CHECKING:  # pragma: no cover - typing only
    from collections.abc import Iterator, Mapping

    from rapidocr import RapidOCR

__all__ = ["MAX_OCR_SIDE", "MAX_UPSCALE", "MIN_LEGIBLE_SIDE", "MIN_OCR_SIDE", "OCR_ENGINES", "SAME_ROW_TOLERANCE",
           "TURNED_BOX_RATIO", "WARM_UP_SIZES", "OcrImage", "OcrLine", "bundled_models", "character_error_rate",
           "engine_description", "engine_in_use", "get_engine", "memory_arena_chosen", "use_memory_arena",
           "group_rows", "lines_to_text", "load_rgb", "normalise_text", "ocr_lines", "read_boxes", "reading_order", "transcribe",
           "warm_up"]

# --- the engine ------------------------------------------------------------------------------------------
#
# RapidOCR 3.x with the models bundled in its wheel, one per process, and how it is called: which model files it
# loads (:func:`bundled_models`, never a download), its settings, the lock around it, and the direction classifier
# used only for text boxes RapidOCR turns by 90 degrees (:func:`read_boxes`). The sections after this one prepare
# images and put the text in reading order. Source of the engine's behaviour: the
# ``rapidocr`` 3.10.0 wheel (``config.yaml``, ``default_models.yaml``, ``models/``, ``utils/process_img.py``),
# checked 2026-12-07.
#

#: Settings for ``rapidocr.RapidOCR(params=...)`` (dotted keys of its ``config.yaml``), besides the model files:
#:
#: - one intra-op and one inter-op thread per ONNX Runtime session: identical numbers on every run (a
#:   multi-threaded reduction may add floats in a different order); the cores are used by reading several
#:   images at once, one engine each (:data:`OCR_ENGINES`), which for a class is also faster than splitting one
#:   image between threads;
#: - ONNX Runtime's CPU memory arena only in a server process of its own (:func:`use_memory_arena`): there each
#:   session keeps its buffers between pages instead of asking the operating system for fresh zeroed memory every
#:   call. Detection of a 960x736 page took 0.146 s of CPU instead of 0.200 s and recognition of six long lines
#:   0.222 s instead of 0.299 s (thread CPU time, one thread each); the text, boxes and scores of all 38 course
#:   images stayed identical. The cost is memory: a process that read both handwriting pages peaked at 0.58 GB
#:   instead of 0.51 GB and then held 0.58 GB instead of 0.39 GB (all measured 2026-12-07,
#:   ``benchmarks/classroom.py --profile`` shows the CPU per page). So a learner's kernel keeps RapidOCR's own
#:   setting, off (on a hub, memory per learner is what limits the class: docs/TEACHING.md), and the shared
#:   servers ``python -m helpers.offline`` starts (a classroom, a hub service) turn it on;
#: - text detection on a copy whose long side is at most 960 px (``limit_type: max``), PaddleOCR's own default
#:   (RapidOCR's ``min``/736 *upscales* small images: a 420x60 snippet became 5152x736 and took seconds; with
#:   3.10's defaults the 11-px line of images/eval/small_text.png was not found at all, measured 2026-12-07).
#:   Recognition still reads the crops at full resolution, so only very small text loses out;
#: - a detection box is kept when its mean text probability is at least 0.4 (RapidOCR's default 0.5 missed
#:   the whole line "- learn soft prompt tokens, LLM" of images/handwriting_en.jpg with the 1.4 models;
#:   with 3.10, 0.4 and 0.5 give the same text on both handwriting pages, measured 2026-12-07);
#: - a line is kept when the recognizer's confidence is at least 0.6 (RapidOCR's default 0.5): on the course's 33
#:   images every line between 0.5 and 0.6 was a single invented character in a drawing ("R" in the drawing of
#:   images/spot_difference_b.png, "O" on four drawings), and no real line scored below 0.8 (measured
#:   2026-12-07 with rapidocr 3.10.0);
#: - RapidOCR logs only critical messages: its info lines ("Using engine_name: onnxruntime") and the warning for
#:   an image without text would otherwise appear under notebook cells;
#: - the text-direction classifier is off for ordinary lines; see :func:`read_boxes` for the lines it reads.
_ENGINE_PARAMS: dict[str, object] = {
    "Global.log_level": "critical",
    "Global.use_cls": False,
    "Global.text_score": 0.6,
    "EngineConfig.onnxruntime.intra_op_num_threads": 1,
    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    "EngineConfig.onnxruntime.enable_cpu_mem_arena": False,     # see use_memory_arena()
    "Det.limit_type": "max",
    "Det.limit_side_len": 960,
    "Det.box_thresh": 0.4,
}

#: RapidOCR turns a text box whose height is at least this many times its width by 90 degrees before reading
#: it (``get_rotate_crop_image`` in ``rapidocr/utils/process_img.py``, 3.10.0): a column of text, or a line of
#: a page lying on its side. Whether that turn made it upright or upside down is what the direction classifier
#: decides.
TURNED_BOX_RATIO = 1.5

def _engines_setting(environ: Mapping[str, str] = os.environ) -> int:
    """``VISION_OCR_ENGINES`` if set (a whole number from 1), else the cores this process may use.

    >>> _engines_setting({"VISION_OCR_ENGINES": "1"})
    1
    """
    value = environ.get("VISION_OCR_ENGINES", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ConfigurationError(f"VISION_OCR_ENGINES={value!r} is not a number of OCR engines.",
                                     fix="set it to a whole number from 1 (e.g. 1 to read one image at a time), "
                                         "or remove it to use one engine per core.")
        return int(value)
    try:
        return len(os.sched_getaffinity(0))      # the cores this process may use (a container may allow fewer)
    except (AttributeError, OSError):            # macOS, Windows
        return os.cpu_count() or 1


#: Whether this process chose ONNX Runtime's memory arena for its OCR engines (None: not chosen, off).
_ARENA: bool | None = None


def use_memory_arena(on: bool = True) -> None:
    """Turn ONNX Runtime's CPU memory arena on (or off) for the OCR engines this process creates from now on.

    About 20% less CPU per page for about 0.2 GB more memory per engine (measured 2026-12-07, see
    ``_ENGINE_PARAMS``): worth it in a server that reads a class's photos, not in a learner's kernel. Call it
    before the first read; engines already made keep their setting.

    >>> use_memory_arena(False); memory_arena_chosen()
    True
    """
    global _ARENA
    _ARENA = bool(on)
    _ENGINE_PARAMS["EngineConfig.onnxruntime.enable_cpu_mem_arena"] = _ARENA


def memory_arena_chosen() -> bool:
    """Whether :func:`use_memory_arena` was called in this process (a server's command line leaves that choice
    alone when a benchmark made it)."""
    return _ARENA is not None


#: How many images this process reads at once at most: one RapidOCR engine per core (``VISION_OCR_ENGINES``
#: sets another number), created when first needed, so a notebook that reads one image at a time loads one.
#: RapidOCR is not documented as thread-safe (its ``__call__`` mutates post-processing settings), so an engine
#: reads one image at a time; with one per core, a classroom server's analyses run side by side instead of
#: queueing for a single engine, which left one of two cores to OCR when 30 learners sent their own photos
#: (``benchmarks/classroom.py --before-after``). Each engine holds its own copy of the three models (about
#: 50 MB) and its memory arena (see ``_ENGINE_PARAMS``): a process that had read both handwriting pages held
#: 0.58 GB with one engine and 1.10 GB after also reading them with two at once (0.38 and 0.76 GB without the
#: arena; resident memory, measured 2026-12-07). ``VISION_OCR_ENGINES=1`` keeps a learner's own kernel on a
#: shared hub at one.
OCR_ENGINES = _engines_setting()

_ENGINES: list[RapidOCR] = []                   # every engine created, the first one is get_engine()'s
_IDLE: list[RapidOCR] = []                      # engines not reading now (the last one used is taken first)
_POOL = threading.Condition()                   # guards both lists and the count of engines being created
_creating = 0

def bundled_models() -> dict[str, Path]:
    """The ONNX files inside the installed ``rapidocr`` wheel the engine loads: ``det``, ``rec`` and ``cls``.

    Found by name in the package's ``models`` folder (3.10.0: ``PP-OCRv6_det_small.onnx``,
    ``PP-OCRv6_rec_small.onnx``, ``ch_ppocr_mobile_v2.0_cls_mobile.onnx``). Passing these paths to RapidOCR means
    its download code is never reached; a wheel without them raises ``ConfigurationError`` instead of downloading.

    >>> sorted(bundled_models())                                         # doctest: +SKIP
    ['cls', 'det', 'rec']
    """
    try:
        spec = importlib.util.find_spec("rapidocr")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "Local OCR needs the rapidocr package, which is not installed.",
            fix="pip install -r requirements.txt (it pins rapidocr>=3.10,<4 and onnxruntime).",
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    found: dict[str, Path] = {}
    for task in ("det", "rec", "cls"):
        files = sorted(folder.glob(f"*_{task}_*.onnx"))
        if len(files) != 1:
            raise ConfigurationError(
                f"Expected one bundled {task} model in {folder}, found {len(files)}: the installed rapidocr "
                "does not ship the models this course uses, and the course never downloads models.",
                fix="pip install -r requirements.txt (rapidocr>=3.10,<4 bundles them).",
            )
        found[task] = files[0]
    return found


def engine_description() -> str:
    """Which OCR reads the images: package versions and model files (shown in notebooks and benchmarks).

    >>> engine_description()                                             # doctest: +SKIP
    'rapidocr 3.10.0 (PP-OCRv6_det_small.onnx, PP-OCRv6_rec_small.onnx, ch_ppocr_mobile_v2.0_cls_mobile.onnx) on onnxruntime 1.32.0'
    """
    models = ", ".join(path.name for path in bundled_models().values())
    return f"rapidocr {_version('rapidocr')} ({models}) on onnxruntime {_version('onnxruntime')}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def get_engine() -> RapidOCR:
    """Return this process's first RapidOCR engine, creating it on the first call (about 1 s: loads 3 ONNX
    models). Reading goes through :func:`engine_in_use`, which lends an engine to one caller at a time.

    >>> engine = get_engine()        # doctest: +SKIP
    """
    with _POOL:
        if _ENGINES:
            return _ENGINES[0]
    with engine_in_use() as engine:   # creates the first engine if none exists (and waits if it is being made)
        pass
    with _POOL:
        return _ENGINES[0] if _ENGINES else engine


@contextlib.contextmanager
def engine_in_use() -> Iterator[RapidOCR]:
    """Borrow an engine for one image: an idle one, else a new one while there are fewer than
    :data:`OCR_ENGINES`, else wait for one to be returned. The engine is this caller's alone until the block
    ends (RapidOCR is not documented as thread-safe).

    >>> with engine_in_use() as engine:                                  # doctest: +SKIP
    ...     result = engine(bgr, use_cls=False)
    """
    global _creating
    with _POOL:
        while not _IDLE and len(_ENGINES) + _creating >= OCR_ENGINES:
            _POOL.wait()
        engine = _IDLE.pop() if _IDLE else None
        if engine is None:
            _creating += 1
    if engine is None:
        try:
            engine = _create_engine()
        except BaseException:
            with _POOL:
                _creating -= 1
                _POOL.notify()
            raise
        with _POOL:
            _creating -= 1
            _ENGINES.append(engine)
    try:
        yield engine
    finally:
        with _POOL:
            _IDLE.append(engine)
            _POOL.notify()


def _create_engine() -> RapidOCR:
    models = bundled_models()
    try:  # imported here, not at the top: RapidOCR loads ONNX Runtime (heavy), only when OCR is first used
        import onnxruntime  # noqa: F401  (RapidOCR does not require it; without it the error is less clear)
        from rapidocr import RapidOCR
    except ImportError as err:
        raise ConfigurationError(
            f"Local OCR needs the rapidocr and onnxruntime packages ({err}).",
            fix="pip install -r requirements.txt (it pins rapidocr>=3.10,<4 and onnxruntime).",
        ) from err
    params = {**_ENGINE_PARAMS, **{f"{task.capitalize()}.model_path": str(path) for task, path in models.items()}}
    return RapidOCR(params=params)


def _is_turned(box: np.ndarray) -> bool:
    """Whether RapidOCR turns this box by 90 degrees before reading it (see ``TURNED_BOX_RATIO``)."""
    width = max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3]))
    height = max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))
    return bool(width > 0 and height / width >= TURNED_BOX_RATIO)


def _found(result: object) -> list[tuple[np.ndarray, str, float]]:
    boxes, texts, scores = (getattr(result, name, None) for name in ("boxes", "txts", "scores"))
    if boxes is None or texts is None or scores is None:   # no text found
        return []
    return list(zip(np.asarray(boxes, dtype=np.float64), texts, scores, strict=True))


def read_boxes(bgr: np.ndarray) -> list[tuple[np.ndarray, str, float]]:
    """(box, text, score) for each text box RapidOCR reads in ``bgr``, in its order.

    The direction classifier (0 or 180 degrees) is used only for the boxes RapidOCR turns by 90 degrees before
    reading them (``TURNED_BOX_RATIO``): for those, which way is up is a guess the classifier settles (the line
    "Fragile: this side up" on its side, images/eval/rotated_90.png: character error rate 0.62 without it, 0.00
    with it). For upright lines it only does harm: on images/handwriting_en.jpg it turned one line upside down
    (CER 0.03 without it, 0.17 with it; both measured 2026-12-07 with rapidocr 3.10.0). So the page is read
    without it, and read again with it only when a turned box was found; detection is the same in both passes.
    """
    image = np.ascontiguousarray(bgr)
    with engine_in_use() as engine:
        upright = _found(engine(image, use_cls=False))
        if not any(_is_turned(box) for box, _, _ in upright):
            return upright
        classified = _found(engine(image, use_cls=True))
    return [found for found in upright if not _is_turned(found[0])] + \
        [found for found in classified if _is_turned(found[0])]


# --- images in, lines out ----------------------------------------------------------------------------------

#: What the OCR functions accept: anything :func:`helpers.images.load_image` opens.
OcrImage = Image.Image | str | os.PathLike | bytes

#: Images whose long side is larger than this are downscaled before OCR (boxes are mapped back to the
#: original pixels). 1600 px keeps 10-12 px tall text readable and bounds detection time on 2 cores.
MAX_OCR_SIDE = 1600

#: Images whose long side is smaller than this are upscaled (at most ``MAX_UPSCALE`` times) before OCR:
#: detection runs at 960 px anyway, and recognition reads small print better from the larger crops (chart
#: tick labels at 640x480: "Quarterlysales" became "Quarterly sales" and three more labels were found).
MIN_OCR_SIDE = 960
MAX_UPSCALE = 3.0

#: Two boxes belong to the same text row when their vertical centres differ by less than this fraction of
#: the smaller box height.
SAME_ROW_TOLERANCE = 0.5



@dataclass(frozen=True)
class OcrLine:
    """One detected text box: its text, its 4 corner points in pixels of the analysed image, its score.

    ``box`` runs clockwise from the top-left corner, as RapidOCR returns it; ``score`` is the recognizer's
    confidence between 0 and 1.

    >>> line = OcrLine("Hello", ((10.0, 5.0), (60.0, 5.0), (60.0, 25.0), (10.0, 25.0)), 0.98)
    >>> line.left, line.top, line.height
    (10.0, 5.0, 20.0)
    """

    text: str
    box: tuple[tuple[float, float], ...]
    score: float

    @property
    def left(self) -> float:
        """Smallest x of the box."""
        return min(x for x, _ in self.box)

    @property
    def right(self) -> float:
        """Largest x of the box."""
        return max(x for x, _ in self.box)

    @property
    def top(self) -> float:
        """Smallest y of the box."""
        return min(y for _, y in self.box)

    @property
    def bottom(self) -> float:
        """Largest y of the box."""
        return max(y for _, y in self.box)

    @property
    def height(self) -> float:
        """Height of the box's bounding rectangle."""
        return self.bottom - self.top

    @property
    def centre_y(self) -> float:
        """Vertical centre of the box."""
        return (self.top + self.bottom) / 2


# --- loading -----------------------------------------------------------------------------------------

def load_rgb(image: OcrImage) -> Image.Image:
    """Open ``image`` (PIL image, path, URL or encoded bytes) as an RGB image, upright by its EXIF orientation.

    Opening, format checks and errors are :func:`helpers.images.load_image`'s (first frame of an animated
    image, ``ImageNotFoundError`` / ``UnsupportedImageError`` naming the source); transparent pixels are then
    composited on white, so dark text on a transparent PNG stays readable. 16-bit greyscale (PNG ``I;16``) and
    32-bit images are scaled to 8 bits, not clipped, so a 16-bit gradient stays a gradient.

    >>> load_rgb(Image.new("RGBA", (4, 3))).mode
    'RGB'
    """
    img = load_image(image)
    try:
        if img.mode.startswith("I") or img.mode == "F":   # 16/32-bit: scaled to 8 bits (convert() would clip)
            img = normalise_mode(img)[0]
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(canvas, rgba).convert("RGB")
        return img.convert("RGB")
    except (OSError, ValueError) as err:
        raise UnsupportedImageError(
            f"The image could not be converted to RGB: {err}.",
            fix="re-save the file as PNG or JPEG and try again.",
        ) from err


# --- engine ------------------------------------------------------------------------------------------

#: Page sizes :func:`warm_up` reads: 4:3 and 16:9 landscape (photos, screenshots, video frames) and 3:4
#: portrait (phone photos). ONNX Runtime plans its memory per input shape, so the first image of a new shape
#: costs about 0.2-0.4 s more (measured 2025-11-21); these are the shapes most course images are read at.
WARM_UP_SIZES: tuple[tuple[int, int], ...] = ((1200, 900), (1280, 720), (900, 1200))


def warm_up(sizes: tuple[tuple[int, int], ...] = WARM_UP_SIZES, *, engines: int = 1) -> None:
    """Load the models and read one page of each size in ``sizes``, so no real request pays for that.

    ONNX Runtime allocates and plans its buffers on the first inference at each input shape, which makes that
    call much slower than the next ones. The offline server calls this once at start-up, in the background
    (about 2 s on 2 cores). Pass ``sizes=()`` to only load the models. ``engines``: how many engines to make
    ready (at most :data:`OCR_ENGINES`); a server that expects several images at once (a classroom) may warm
    one per core, a notebook reading one image at a time needs one.

    >>> warm_up()                    # doctest: +SKIP
    """
    try:
        font = ImageFont.load_default(size=32)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        font = ImageFont.load_default()
    pages = []
    for size in sizes:
        page = Image.new("RGB", size, "white")
        ImageDraw.Draw(page).text((40, 40), "Warm up: 0123456789", fill="black", font=font)
        pages.append(np.ascontiguousarray(np.asarray(page)[:, :, ::-1]))
    with contextlib.ExitStack() as borrowed:       # holding them all at once makes each a different engine
        for _ in range(max(1, min(engines, OCR_ENGINES))):
            engine = borrowed.enter_context(engine_in_use())
            for bgr in pages:
                engine(bgr, use_cls=False)


# --- OCR -----------------------------------------------------------------------------------------------

#: Pixels: after scaling for OCR, an image thinner than this has no legible text (see ocr_lines).
MIN_LEGIBLE_SIDE = 8


def ocr_lines(image: OcrImage, *, max_side: int = MAX_OCR_SIDE) -> list[OcrLine]:
    """Detect and read the text in ``image``; return its text boxes in reading order.

    Reading order: rows from top to bottom (boxes whose vertical centres are close form one row, see
    :func:`reading_order`), and left to right within a row. Images larger than ``max_side`` on their long
    side are read from a downscaled copy, images smaller than ``MIN_OCR_SIDE`` from an upscaled one; the
    boxes are always in pixels of the original (EXIF-upright) image. Taught in
    notebooks/05_handwriting_ocr.ipynb.

    >>> for line in ocr_lines("scan.png"):                               # doctest: +SKIP
    ...     print(line.text, line.score, line.box[0])
    """
    rgb = load_rgb(image)
    width, height = rgb.size
    long_side = max(width, height)
    if long_side > max_side:
        scale = max_side / long_side
        resample = Image.Resampling.LANCZOS
    else:
        target = min(MIN_OCR_SIDE, max_side)
        scale = min(target / long_side, MAX_UPSCALE) if long_side < target else 1.0
        resample = Image.Resampling.BICUBIC
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = rgb.resize(size, resample, reducing_gap=3.0 if scale < 1 else None)
    if min(rgb.size) < MIN_LEGIBLE_SIDE:
        # Nothing this thin is legible, and RapidOCR would blow a 1600x1 strip up to gigabytes of padding.
        return []
    sx, sy = width / rgb.width, height / rgb.height
    lines = []
    for box, text, score in read_boxes(np.asarray(rgb)[:, :, ::-1]):
        text = str(text).strip()
        if not text:
            continue
        points = tuple(
            (round(min(max(float(x) * sx, 0.0), width), 1), round(min(max(float(y) * sy, 0.0), height), 1))
            for x, y in box
        )
        lines.append(OcrLine(text=text, box=points, score=round(float(score), 4)))
    return reading_order(lines)


def group_rows(lines: list[OcrLine] | tuple[OcrLine, ...]) -> list[list[OcrLine]]:
    """Group text boxes into rows (top to bottom), each row sorted left to right.

    A box joins the current row when its vertical centre is within ``SAME_ROW_TOLERANCE`` (half) of the
    smaller box height from the row's centre; otherwise it starts a new row.

    >>> a = OcrLine("right", ((200, 10), (260, 10), (260, 30), (200, 30)), 1.0)
    >>> b = OcrLine("left", ((10, 12), (60, 12), (60, 32), (10, 32)), 1.0)
    >>> [[line.text for line in row] for row in group_rows([a, b])]
    [['left', 'right']]
    """
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.centre_y, ln.left)):
        if rows:
            row = rows[-1]
            row_centre = sum(ln.centre_y for ln in row) / len(row)
            row_height = min(ln.height for ln in row)
            if abs(line.centre_y - row_centre) < SAME_ROW_TOLERANCE * max(min(row_height, line.height), 1.0):
                row.append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: (ln.left, ln.top)) for row in rows]


def reading_order(lines: list[OcrLine] | tuple[OcrLine, ...]) -> list[OcrLine]:
    """Sort text boxes top to bottom, then left to right within a row (see :func:`group_rows`).

    >>> a = OcrLine("second", ((0, 50), (90, 50), (90, 70), (0, 70)), 1.0)
    >>> b = OcrLine("first", ((0, 10), (90, 10), (90, 30), (0, 30)), 1.0)
    >>> [line.text for line in reading_order([a, b])]
    ['first', 'second']
    """
    return [line for row in group_rows(lines) for line in row]


def lines_to_text(lines: list[OcrLine] | tuple[OcrLine, ...]) -> str:
    """Join text boxes into a transcription: boxes of one row joined by a space, rows by newlines.

    >>> a = OcrLine("Hello", ((0, 10), (50, 10), (50, 30), (0, 30)), 1.0)
    >>> b = OcrLine("world", ((60, 10), (110, 10), (110, 30), (60, 30)), 1.0)
    >>> lines_to_text([b, a])
    'Hello world'
    """
    return "\n".join(" ".join(line.text for line in row) for row in group_rows(lines))


def transcribe(image: OcrImage, *, max_side: int = MAX_OCR_SIDE) -> str:
    """The text of ``image`` in reading order, one text row per line ("" if none was found).

    Taught in notebooks/05_handwriting_ocr.ipynb.

    >>> print(transcribe("handwritten_note.jpg"))                       # doctest: +SKIP
    """
    return lines_to_text(ocr_lines(image, max_side=max_side))


# --- scoring -----------------------------------------------------------------------------------------

_WHITESPACE = re.compile(r"\s+")
# CJK ideographs, kana, Hangul and CJK punctuation: scripts written without spaces between words.
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{CJK_NO_SPACE}]) (?=[{CJK_NO_SPACE}])")


def normalise_text(text: str) -> str:
    """Normalise a transcription before scoring it; what :func:`character_error_rate` compares.

    1. Unicode NFKC: full-width letters and digits become ASCII, ligatures are split, compatibility
       forms (e.g. the full-width comma ``，`` -> ``,``) are unified, so an OCR engine and a
       human typist who chose different code points for the same glyph are not penalised.
    2. Every run of whitespace (spaces, tabs, newlines) becomes one space; leading and trailing
       whitespace is removed. Line breaks therefore do not count, only the characters.
    3. A space between two CJK characters is removed: Chinese and Japanese do not separate words, and
       OCR engines insert such spaces inconsistently.

    Case and punctuation are kept: they are part of a faithful transcription.

    >>> normalise_text("  Hello\\n\\tＷｏｒｌｄ ")
    'Hello World'
    >>> normalise_text("你 好，世界")
    '你好,世界'
    """
    text = unicodedata.normalize("NFKC", text)
    text = _WHITESPACE.sub(" ", text).strip()
    return _SPACE_BETWEEN_CJK.sub("", text)


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Character error rate: Levenshtein edits (insertions, deletions, substitutions) / reference length.

    Both texts are first normalised with :func:`normalise_text`. 0.0 is a perfect transcription; the
    value can exceed 1.0 when the hypothesis adds many characters. An empty reference gives 0.0 for an
    empty hypothesis and 1.0 otherwise. Characters are Unicode code points, so Chinese works as expected.
    The edit distance comes from ``rapidfuzz.distance.Levenshtein``. Taught in
    notebooks/05_handwriting_ocr.ipynb.

    >>> character_error_rate("kitten", "sitting")
    0.5
    >>> character_error_rate("你好世界", "你好世")
    0.25
    """
    ref, hyp = normalise_text(reference), normalise_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)
