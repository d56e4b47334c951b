"""The OCR engine: RapidOCR 3.x with the models bundled in its wheel, one per process, and how it is called.

:mod:`helpers.ocr` prepares images and orders the text; this module owns the engine: which model files it loads
(:func:`bundled_models`, never a download), its settings, the lock around it, and the direction classifier used
only for text boxes RapidOCR turns by 90 degrees (:func:`read_boxes`). Source of the engine's behaviour: the
``rapidocr`` 3.10.0 wheel (``config.yaml``, ``default_models.yaml``, ``models/``, ``utils/process_img.py``),
checked 2026-12-07.

>>> from helpers.ocr_engine import engine_description
>>> engine_description()                                             # doctest: +SKIP
'rapidocr 3.10.0 (PP-OCRv6_det_small.onnx, PP-OCRv6_rec_small.onnx, ch_ppocr_mobile_v2.0_cls_mobile.onnx) on onnxruntime 1.32.0'
"""

from __future__ import annotations

import importlib.util
import threading
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from helpers.errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from rapidocr import RapidOCR

__all__ = ["TURNED_BOX_RATIO", "bundled_models", "engine_description", "get_engine", "read_boxes"]

#: Settings for ``rapidocr.RapidOCR(params=...)`` (dotted keys of its ``config.yaml``), besides the model files:
#:
#: - one intra-op and one inter-op thread per ONNX Runtime session: identical numbers on every run (a
#:   multi-threaded reduction may add floats in a different order), and the offline server can run a second
#:   request on the other core;
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
    "Det.limit_type": "max",
    "Det.limit_side_len": 960,
    "Det.box_thresh": 0.4,
}

#: RapidOCR turns a text box whose height is at least this many times its width by 90 degrees before reading
#: it (``get_rotate_crop_image`` in ``rapidocr/utils/process_img.py``, 3.10.0): a column of text, or a line of
#: a page lying on its side. Whether that turn made it upright or upside down is what the direction classifier
#: decides.
TURNED_BOX_RATIO = 1.5

_ENGINE: RapidOCR | None = None
# RapidOCR is not documented as thread-safe (its __call__ mutates post-processing settings), so one lock
# guards both the lazy creation and every call of the single engine of this process.
_ENGINE_LOCK = threading.Lock()

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
    """Return this process's RapidOCR engine, creating it on the first call (about 1 s: loads 3 ONNX models).

    >>> engine = get_engine()        # doctest: +SKIP
    """
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _create_engine()
        return _ENGINE


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
    engine = get_engine()
    image = np.ascontiguousarray(bgr)
    with _ENGINE_LOCK:
        upright = _found(engine(image, use_cls=False))
        if not any(_is_turned(box) for box, _, _ in upright):
            return upright
        classified = _found(engine(image, use_cls=True))
    return [found for found in upright if not _is_turned(found[0])] + \
        [found for found in classified if _is_turned(found[0])]
