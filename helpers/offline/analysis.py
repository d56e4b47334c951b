"""Local image analysis for the offline backend: what it can honestly say about an image without a model.

The offline server (``helpers.offline.server``) has no language model. For every image in a request it calls
:func:`analyze`, and ``helpers.offline.answers.compose`` turns the reports into the answer text. A report holds:

- the text, read with local OCR (:mod:`helpers.ocr`, RapidOCR with its bundled PP-OCRv6 models), in reading order;
- frontal faces, found with the Haar cascade that ships inside OpenCV's 4.x wheels;
- size and orientation, and the dominant colours in plain names with their share of the image, named in a
  perceptual colour space (:mod:`helpers.offline.colours`), any uniform black/white frame, and the main colour
  of each third of the picture (top to bottom, left to right);
- a perceptual hash (``imagehash.phash``) that finds identical and near-identical images across a request.

:func:`difference` compares two images (identical bytes, near-identical, where the pixels changed, which OCR
words were added or removed); :func:`near_duplicates` lists the near-identical pairs of a request.

Every notebook that runs offline gets its answers from here; the OCR part is taught in
notebooks/05_handwriting_ocr.ipynb, the difference in notebooks/03_multiple_images.ipynb.

>>> from helpers.offline.analysis import analyze
>>> report = analyze(open("images/astronaut.jpg", "rb").read())      # doctest: +SKIP
>>> report.orientation, len(report.faces)                            # doctest: +SKIP
('square', 1)

Reports are cached by the SHA-256 of the image bytes, in memory and on disk, so re-running a notebook, or
restarting its kernel, does not analyse the same image twice. Local analysis is deterministic: the same bytes and the same analysis code give the same report. So a report is
stored as a small JSON file named after the SHA-256 of the image bytes, in a folder named after a fingerprint of
the analysing code (:data:`FINGERPRINT`: the source of ``helpers/ocr.py`` and of the offline analysis modules,
and the versions of RapidOCR, OpenCV and imagehash). Changing any of these starts a new folder, so a stale report
is never read. The folder is the server's ``ServerSettings.analysis_cache`` (``VISION_OFFLINE_CACHE``, else
``$XDG_CACHE_HOME/gpt-vision-course`` or ``~/.cache/gpt-vision-course``; ``off``: none). Nothing is ever required of it: an
unwritable or corrupt folder only means the analysis runs again.

>>> from helpers.offline.analysis import load_stored
>>> load_stored("0" * 64, Path("no-such-folder")) is None      # nothing stored under that digest
True
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import json
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import imagehash
import numpy as np
from PIL import GifImagePlugin, Image, ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from helpers.compare import changed_regions
from helpers.errors import ImageTooLargeError, UnsupportedImageError
from helpers.images import sniff_mime
from helpers.local import REPO_ROOT
from helpers.ocr import OcrLine, lines_to_text, load_rgb, normalise_text, ocr_lines
from helpers.ocr import warm_up as ocr_warm_up
from helpers.offline.colours import analyse_colours, colour_name, dominant_colours
from helpers.writing import IDEOGRAPHS_AND_KANA

# --- pixels ----------------------------------------------------------------------------------------------

# Face detection: OpenCV's frontal-face Haar cascade on a grey copy whose long side is at most _FACE_SIDE px.
# Tuned on scikit-image's sample photos, a bar chart and a page of text: minNeighbors=6 and a minimum face
# size of 6% of the short side keep texture and glyphs from looking like faces; faces smaller than that are
# not reported.
_FACE_CASCADE_FILE = "haarcascade_frontalface_default.xml"
_FACE_SIDE = 512
_FACE_MIN_FRACTION = 0.06
_FACE_SCALE_FACTOR = 1.15
_FACE_MIN_NEIGHBORS = 6



# --- faces -----------------------------------------------------------------------------------------------

_face_cascade: cv2.CascadeClassifier | None = None
_face_lock = threading.Lock()


def detect_faces(image: Image.Image) -> tuple[tuple[int, int, int, int], ...]:
    """Frontal faces as ``(x, y, w, h)`` boxes in pixels of ``image``, sorted left to right.

    Uses OpenCV's ``haarcascade_frontalface_default.xml`` (shipped in the 4.x opencv-python-headless wheel). It finds upright,
    roughly frontal faces that are at least ~6% of the image's short side; it misses profiles, small faces
    and faces at an angle, and it says nothing about who a person is.

    >>> from skimage import data                                      # doctest: +SKIP
    >>> detect_faces(Image.fromarray(data.astronaut()))               # doctest: +SKIP
    ((176, 65, 98, 98),)
    """
    global _face_cascade
    grey = image.convert("L")
    scale = min(1.0, _FACE_SIDE / max(grey.size))
    if scale < 1.0:
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                           Image.Resampling.BILINEAR)
    pixels = np.asarray(grey)
    min_size = max(20, round(_FACE_MIN_FRACTION * min(pixels.shape)))
    if min(pixels.shape) < min_size:
        return ()
    with _face_lock:  # a CascadeClassifier is not documented as safe to share between threads
        if _face_cascade is None:
            _face_cascade = cv2.CascadeClassifier(cv2.data.haarcascades + _FACE_CASCADE_FILE)  # type: ignore[attr-defined]
            if _face_cascade.empty():
                raise RuntimeError(f"OpenCV could not load {_FACE_CASCADE_FILE}; reinstall opencv-python-headless<5 (pip install -r requirements.txt).")
        found = _face_cascade.detectMultiScale(
            pixels, scaleFactor=_FACE_SCALE_FACTOR, minNeighbors=_FACE_MIN_NEIGHBORS, minSize=(min_size, min_size)
        )
    boxes = (
        (round(x / scale), round(y / scale), round(w / scale), round(h / scale))
        for x, y, w, h in (tuple(int(v) for v in row) for row in found)
    )
    return tuple(sorted(boxes))


# --- stored ----------------------------------------------------------------------------------------------

__all__ = ["analyze_picture", "decode_first_frame", "Picture", "Pixels", "pixels_of", "READERS", "analyze", "cache_info", "CACHE_SIZE", "changed_regions", "clear_cache", "colour_name", "detect_faces",
           "difference", "dominant_colours", "FINGERPRINT", "hash_distance", "ImageReport", "load_stored",
           "NEAR_DUPLICATE_MAX_DISTANCE", "near_duplicates", "OcrLine", "save_stored", "stored_folder", "warm_up"]

_SOURCES = ("helpers/ocr.py", "helpers/offline/analysis.py", "helpers/offline/colours.py", "helpers/image_metadata.py")
_PACKAGES = ("rapidocr", "onnxruntime", "opencv-python-headless", "imagehash", "pillow", "numpy")


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for source in _SOURCES:
        path = REPO_ROOT / source
        digest.update(path.read_bytes() if path.exists() else source.encode())
    for package in _PACKAGES:
        try:
            digest.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none".encode())
    return digest.hexdigest()[:16]


#: Names the folder reports are kept in: a different analysing code never reads another's reports.
FINGERPRINT = _fingerprint()


def stored_folder(store: Path | None) -> Path | None:
    """Where reports are kept in the cache folder ``store`` (``ServerSettings.analysis_cache``; None: nowhere).

    >>> stored_folder(Path("cache")).name == f"analysis-{FINGERPRINT}", stored_folder(None)
    (True, None)
    """
    return None if store is None else store / f"analysis-{FINGERPRINT}"


class _StoredLine(BaseModel):
    model_config = ConfigDict(strict=True)
    text: str = Field(max_length=10_000)
    box: list[tuple[float, float]] = Field(max_length=16)
    score: float


class _StoredReport(BaseModel):
    """The schema of a stored report: every field, every type (strict: a text that is a number is damage)."""

    model_config = ConfigDict(strict=True)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    mime_type: str = Field(max_length=100)
    orientation: str = Field(max_length=20)
    lines: list[_StoredLine] = Field(max_length=5_000)
    faces: list[tuple[int, int, int, int]] = Field(max_length=1_000)
    colours: list[tuple[str, float]] = Field(max_length=100)
    phash: str = Field(max_length=64)
    border: str = Field(default="", max_length=40)
    thirds: list[str] = Field(default_factory=list, max_length=3)
    columns: list[str] = Field(default_factory=list, max_length=3)


def load_stored(key: str, store: Path | None) -> dict[str, Any] | None:
    """The stored report (as JSON data) for image digest ``key`` in the cache folder ``store``, or ``None`` when
    there is none or it is damaged: unreadable, not the schema of a report (every field and type is checked), or
    another image's (the analysis then runs again and rewrites it)."""
    where = stored_folder(store)
    if where is None:
        return None
    try:
        checked = _StoredReport.model_validate_json((where / f"{key}.json").read_bytes())
    except (OSError, ValidationError, RecursionError):
        return None
    return checked.model_dump() if checked.sha256 == key else None


def save_stored(key: str, report: dict[str, Any], store: Path | None) -> None:
    """Store ``report`` (JSON data) under ``key`` in ``store``, atomically; any failure is ignored (storing only
    saves time) and leaves no temporary file behind."""
    where = stored_folder(store)
    if where is None:
        return
    temporary: str | None = None
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=where, suffix=".tmp", delete=False, encoding="utf-8") as file:
            temporary = file.name
            json.dump(report, file)
        os.replace(temporary, where / f"{key}.json")
        temporary = None
    except (OSError, TypeError, ValueError):
        return
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


#: How many reports the cache keeps (least recently used are dropped first). A report is a few kB.
CACHE_SIZE = 256

#: Two images whose 64-bit perceptual hashes differ in at most this many bits are "near-identical".
#: Measured 2025-11-21 on 19 distinct scikit-image sample photos: saving as JPEG (quality 70) or halving the
#: size moved the hash by at most 4 bits, while unrelated samples were at least 20 bits apart; a small
#: patch edit moved it by 0-32 bits depending on the photo (``difference`` locates such edits by pixels).
NEAR_DUPLICATE_MAX_DISTANCE = 10

#: A square image is one whose sides differ by at most this fraction of the long side.
SQUARE_TOLERANCE = 0.02

@dataclass(frozen=True)
class ImageReport:
    """What local analysis found in one image (see the module docstring). Sizes are EXIF-upright pixels.

    >>> report = analyze(png_bytes)                                   # doctest: +SKIP
    >>> print(report.text())                                          # doctest: +SKIP
    """

    sha256: str
    width: int
    height: int
    mime_type: str
    orientation: str
    lines: tuple[OcrLine, ...]
    faces: tuple[tuple[int, int, int, int], ...]
    colours: tuple[tuple[str, float], ...]
    phash: str
    border: str = ""                                  # a black/white frame left out of ``colours``, or ""
    thirds: tuple[str, ...] = ()                      # main colour of the top, middle and bottom thirds
    columns: tuple[str, ...] = ()                     # main colour of the left, centre and right thirds

    def text(self) -> str:
        """The transcription: OCR lines in reading order, one text row per line ("" when there is no text)."""
        return lines_to_text(self.lines)


# --- cache -----------------------------------------------------------------------------------------------

_cache: OrderedDict[str, ImageReport] = OrderedDict()
_cache_lock = threading.Lock()
_key_locks: dict[str, threading.Lock] = {}
_stats = {"hits": 0, "misses": 0}


# --- one image of a request ----------------------------------------------------------------------------------

# Each supported format's reader, opened directly: Image.open would first warn (DecompressionBombWarning) about
# a very large image, and turning that warning into an error needs a process-wide warnings filter.
READERS: dict[str, type[ImageFile.ImageFile]] = {
    "image/png": PngImagePlugin.PngImageFile, "image/jpeg": JpegImagePlugin.JpegImageFile,
    "image/webp": WebPImagePlugin.WebPImageFile, "image/gif": GifImagePlugin.GifImageFile}

_sizes: OrderedDict[str, tuple[int, int]] = OrderedDict()   # SHA-256 -> size of images that decoded
_sizes_lock = threading.Lock()


def decode_first_frame(data: bytes, mime: str) -> Image.Image:
    """The first frame of ``data``, decoded by the reader of its sniffed format ``mime`` (a key of
    :data:`READERS`): :class:`ImageTooLargeError` above Pillow's pixel limit, :class:`UnsupportedImageError`
    for bytes that do not decode.

    >>> buf = io.BytesIO(); Image.new("RGB", (40, 30)).save(buf, "PNG")
    >>> decode_first_frame(buf.getvalue(), "image/png").size
    (40, 30)
    """
    try:
        image = READERS[mime](io.BytesIO(data))
        if image.size[0] * image.size[1] > (Image.MAX_IMAGE_PIXELS or 2**62):
            raise ImageTooLargeError(f"The image has {image.size[0]}×{image.size[1]} pixels, too many to process "
                                     "safely.", fix="downscale it (e.g. to 2048 px on the long side).")
        image.load()
        return image
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        if isinstance(err, ImageTooLargeError):
            raise
        raise UnsupportedImageError(f"The {mime} data does not decode: {err}.",
                                    fix="re-save the image as PNG or JPEG.") from None


class Picture:
    """One image of a request, read once: its bytes, the format sniffed from them, their SHA-256 (computed
    here, once), its size, and its pixels, decoded at most once and only when first needed. The same object
    goes through validation (:attr:`size`), analysis (:func:`analyze_picture`), comparison (:attr:`rgb`, see
    :func:`pixels_of`) and the answer, so nothing is sniffed, hashed or decoded twice. The sizes of images that
    decoded are remembered by digest, so a repeated image is not decoded just to be measured.

    >>> buf = io.BytesIO(); Image.new("RGB", (40, 30), "navy").save(buf, "PNG")
    >>> picture = Picture(buf.getvalue(), "image/png")
    >>> picture.size, picture.rgb.mode
    ((40, 30), 'RGB')
    """

    def __init__(self, data: bytes, mime_type: str) -> None:
        self.data, self.mime_type = data, mime_type
        self.sha256 = hashlib.sha256(data).hexdigest()
        self._decoded: Image.Image | None = None
        self._rgb: Image.Image | None = None
        self._lock = threading.RLock()
        with _sizes_lock:
            self._size = _sizes.get(self.sha256)

    @property
    def size(self) -> tuple[int, int]:
        """Width and height as stored (before EXIF orientation), after checking that the pixels decode."""
        if self._size is None:
            self._size = self.decoded().size
        return self._size

    def decoded(self) -> Image.Image:
        """The first frame, decoded once (:func:`decode_first_frame`; its errors)."""
        with self._lock:
            if self._decoded is None:
                self._decoded = decode_first_frame(self.data, self.mime_type)
                with _sizes_lock:
                    _sizes[self.sha256] = self._decoded.size
                    while len(_sizes) > CACHE_SIZE:
                        _sizes.popitem(last=False)
            return self._decoded

    @property
    def rgb(self) -> Image.Image:
        """The pixels as analysis and comparison see them: RGB, upright by EXIF orientation, transparency on
        white (:func:`helpers.ocr.load_rgb` of the decoded frame)."""
        with self._lock:
            if self._rgb is None:
                self._rgb = load_rgb(self.decoded())
            return self._rgb

    def downscaled(self, size: tuple[int, int]) -> Image.Image:
        """The picture resized to ``size`` (Lanczos), what a model sees with ``detail="low"``."""
        return self.decoded().convert("RGB").resize(size, Image.Resampling.LANCZOS)


#: An image as comparison takes it: encoded bytes, a decoded Pillow image, or a request's :class:`Picture`.
Pixels = bytes | Image.Image | Picture


def pixels_of(image: Pixels) -> bytes | Image.Image:
    """What :func:`helpers.compare.changed_regions` takes: a :class:`Picture`'s decoded pixels, else ``image``."""
    return image.rgb if isinstance(image, Picture) else image


def analyze_picture(picture: Picture, *, size: tuple[int, int] | None = None,
                    store: Path | None = None) -> ImageReport:
    """:func:`analyze` for an image of a request, from its already-computed digest and decoded pixels;
    ``size``: analyse it resized to that size instead (``detail="low"``), cached under its own key."""
    if size is None or size == picture.size:
        return _analyze(picture.sha256, lambda: picture.rgb, picture.mime_type, store)
    key = hashlib.sha256(f"{picture.sha256}|{size[0]}x{size[1]}".encode()).hexdigest()
    return _analyze(key, lambda: picture.downscaled(size), picture.mime_type, store)


def analyze(data: bytes, *, store: Path | None = None) -> ImageReport:
    """Analyse encoded image bytes (PNG, JPEG, WebP, GIF...) and return an :class:`ImageReport`.

    Thread-safe and cached by the SHA-256 of ``data`` (in memory, and on disk in the cache folder ``store``): a repeated image costs a dictionary look-up, and two
    concurrent requests for the same new image compute it once (the second waits for the first). Raises
    ``helpers.errors.UnsupportedImageError`` for bytes Pillow cannot decode.

    >>> report = analyze(open("images/astronaut.jpg", "rb").read())   # doctest: +SKIP
    >>> report.width, report.height                                   # doctest: +SKIP
    (512, 512)
    """
    data = bytes(data)
    return _analyze(hashlib.sha256(data).hexdigest(), lambda: load_rgb(data),
                    sniff_mime(data) or "application/octet-stream", store)


def _analyze(key: str, rgb: Callable[[], Image.Image], mime: str, store: Path | None) -> ImageReport:
    """The report cached under ``key``, else the stored one, else computed from ``rgb()`` (called only then)."""
    with _cache_lock:
        report = _cache_get(key)
        if report is not None:
            return report
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _cache_lock:
            report = _cache_get(key)
            if report is not None:
                return report
            _stats["misses"] += 1
        try:
            report = _from_stored(load_stored(key, store))
            if report is None:
                report = _compute(rgb(), key, mime)
                save_stored(key, asdict(report), store)
            with _cache_lock:
                _cache[key] = report
                while len(_cache) > CACHE_SIZE:
                    _cache.popitem(last=False)
        finally:
            with _cache_lock:
                _key_locks.pop(key, None)
    return report


def _cache_get(key: str) -> ImageReport | None:
    """Look ``key`` up and mark it recently used; call with ``_cache_lock`` held."""
    report = _cache.get(key)
    if report is not None:
        _cache.move_to_end(key)
        _stats["hits"] += 1
    return report


def cache_info() -> dict[str, int]:
    """Cache statistics: ``{"hits", "misses", "size", "max_size"}``.

    >>> sorted(cache_info())
    ['hits', 'max_size', 'misses', 'size']
    """
    with _cache_lock:
        return {**_stats, "size": len(_cache), "max_size": CACHE_SIZE}


def clear_cache() -> None:
    """Forget every cached report and reset the statistics (used by tests and benchmarks).

    >>> clear_cache(); cache_info()["size"]
    0
    """
    with _cache_lock:
        _cache.clear()
        _stats.update(hits=0, misses=0)


def _from_stored(raw: dict | None) -> ImageReport | None:
    """A report kept on disk by :mod:`helpers.offline.analysis` (a restarted kernel, another lesson), or None."""
    try:
        return None if raw is None else ImageReport(**{
            **raw, "lines": tuple(OcrLine(line["text"], tuple(map(tuple, line["box"])), line["score"])
                                  for line in raw["lines"]),
            "faces": tuple(map(tuple, raw["faces"])), "colours": tuple(map(tuple, raw["colours"])),
            "thirds": tuple(raw["thirds"]), "columns": tuple(raw["columns"])})
    except (KeyError, TypeError, ValueError):
        return None


def _compute(rgb: Image.Image, key: str, mime: str) -> ImageReport:
    width, height = rgb.size
    # Faces, colours and the hash (about 0.1 s) run on the other core while OCR (the slow part) runs here;
    # OpenCV, Pillow and ONNX Runtime release the GIL while they compute.
    others = _executor.submit(lambda: (detect_faces(rgb), analyse_colours(rgb), str(imagehash.phash(rgb))))
    lines = tuple(ocr_lines(rgb))
    faces, colours, phash = others.result()
    return ImageReport(
        sha256=key,
        width=width,
        height=height,
        mime_type=mime,
        orientation=_orientation(width, height),
        lines=lines,
        faces=faces,
        colours=colours.colours,
        phash=phash,
        border=colours.border,
        thirds=colours.thirds,
        columns=colours.columns,
    )


_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="offline-analysis")


def warm_up() -> None:
    """Load everything :func:`analyze` needs (OCR models, face cascade, hashing) so the first request is fast.

    The offline server calls this once at start-up; it takes one to a few seconds and caches nothing.

    >>> warm_up()                                                     # doctest: +SKIP
    """
    ocr_warm_up()
    blank = Image.new("RGB", (64, 64), "white")
    detect_faces(blank)
    analyse_colours(blank)
    imagehash.phash(blank)


def _orientation(width: int, height: int) -> str:
    if abs(width - height) <= SQUARE_TOLERANCE * max(width, height):
        return "square"
    return "landscape" if width > height else "portrait"


# --- comparing images --------------------------------------------------------------------------------------

def hash_distance(a: ImageReport, b: ImageReport) -> int:
    """Hamming distance (0-64 bits) between two reports' perceptual hashes; 0 means the same picture.

    >>> hash_distance(report, report)                                 # doctest: +SKIP
    0
    """
    return int(imagehash.hex_to_hash(a.phash) - imagehash.hex_to_hash(b.phash))


def near_duplicates(reports: list[ImageReport] | tuple[ImageReport, ...],
                    max_distance: int = NEAR_DUPLICATE_MAX_DISTANCE) -> list[tuple[int, int, int]]:
    """Pairs ``(i, j, distance)`` (0-based, ``i < j``) of identical or near-identical images in ``reports``.

    >>> near_duplicates([analyze(photo_png), analyze(photo_as_jpeg), analyze(chart_png)])   # doctest: +SKIP
    [(0, 1, 0)]
    """
    pairs = []
    for i in range(len(reports)):
        for j in range(i + 1, len(reports)):
            distance = hash_distance(reports[i], reports[j])
            if distance <= max_distance:
                pairs.append((i, j, distance))
    return pairs


_TOKEN = re.compile(rf"[{IDEOGRAPHS_AND_KANA}]|[^\s{IDEOGRAPHS_AND_KANA}]+")


def _word_changes(a_text: str, b_text: str) -> tuple[list[str], list[str]]:
    """Words (single characters for Chinese/Japanese) removed from ``a_text`` and added in ``b_text``.

    The texts are compared character by character with whitespace left out, and every word that holds a
    changed character is reported: OCR often drops or adds spaces ("UnitedStates"), which is not a change.

    >>> _word_changes("Order shipped Tuesday", "Order delayed  Thursday")
    (['shipped', 'Tuesday'], ['delayed', 'Thursday'])
    >>> _word_changes("United States", "UnitedStates")
    ([], [])
    """
    a_words, b_words = _TOKEN.findall(normalise_text(a_text)), _TOKEN.findall(normalise_text(b_text))
    a_owner = [index for index, word in enumerate(a_words) for _ in word]
    b_owner = [index for index, word in enumerate(b_words) for _ in word]
    matcher = difflib.SequenceMatcher(a="".join(a_words), b="".join(b_words), autojunk=False)
    removed: set[int] = set()
    added: set[int] = set()
    for op, i0, i1, j0, j1 in matcher.get_opcodes():
        if op in ("delete", "replace"):
            removed.update(a_owner[i0:i1])
        if op in ("insert", "replace"):
            added.update(b_owner[j0:j1])
    return [a_words[i] for i in sorted(removed)], [b_words[j] for j in sorted(added)]


def _quote_words(words: list[str], limit: int = 12) -> str:
    shown = ", ".join(f"“{word}”" for word in words[:limit])
    return shown + (f" and {len(words) - limit} more" if len(words) > limit else "")


def difference(a: ImageReport, b: ImageReport, a_bytes: Pixels, b_bytes: Pixels, *,
               labels: tuple[str, str] = ("the first image", "the second image")) -> str:
    """Plain sentences saying how image ``b`` differs from image ``a``.

    Says whether they are identical (same SHA-256), the same pixels in a different file, near-identical
    (perceptual-hash distance at most ``NEAR_DUPLICATE_MAX_DISTANCE`` of 64 bits) or different; where the
    pixels changed (regions named top-left, centre... with their share of the image); whether the sizes
    differ; and which OCR words were removed or added. ``labels`` name the two images in the text.

    >>> print(difference(analyze(a), analyze(b), a, b, labels=("Image 1", "Image 2")))   # doctest: +SKIP
    Image 1 and Image 2 are near-identical (perceptual-hash distance 2 of 64 bits). ...
    """
    first, second = labels
    both = f"{first} and {second}"
    if a.sha256 == b.sha256:
        return _capitalise(f"{both} are identical: the same bytes (SHA-256 {a.sha256[:12]}…).")
    distance = hash_distance(a, b)
    sentences = []
    if (a.width, a.height) != (b.width, b.height):
        sentences.append(f"{first} is {a.width}×{a.height} px and {second} is {b.width}×{b.height} px.")
        if abs(a.width / a.height - b.width / b.height) > 0.02 * (a.width / a.height):
            sentences.append("Their shapes differ, so the pixel comparison stretches the second to the first's shape.")
    changed_share, regions = changed_regions(pixels_of(a_bytes), pixels_of(b_bytes))
    if distance <= NEAR_DUPLICATE_MAX_DISTANCE:
        verdict = f"{both} are near-identical (perceptual-hash distance {distance} of 64 bits)."
    elif changed_share < 0.3:
        verdict = (f"{both} differ (perceptual-hash distance {distance} of 64 bits), but most of their pixels "
                   "are the same.")
    else:
        verdict = f"{both} are different pictures (perceptual-hash distance {distance} of 64 bits)."
    sentences.insert(0, verdict)
    if not regions and changed_share == 0.0:  # see pixels_match below
        if (a.width, a.height) == (b.width, b.height):
            sentences.append("Their pixels match (within compression noise): the same picture in a different file.")
        else:
            sentences.append("Their pixels match (within compression noise) once resized to the same size.")
    elif changed_share > 0.6:
        sentences.append(f"Most of the picture differs ({_percent(changed_share)} of the pixels).")
    elif regions:
        by_place: dict[str, list[float]] = {}
        for where, share, _ in regions:
            by_place.setdefault(where, []).append(share)
        parts = [f"{where} (a box covering {_percent(shares[0])} of the image)" if len(shares) == 1 else
                 f"{where} ({len(shares)} boxes covering {_percent(sum(shares))} of the image)"
                 for where, shares in by_place.items()]
        noun = "region" if len(regions) == 1 else "regions"
        sentences.append(f"The pixels differ in {len(regions)} {noun}: {_join(parts)}; "
                         f"{_percent(changed_share)} of the pixels changed.")
    else:
        sentences.append(f"Only scattered pixels differ ({_percent(changed_share)}), e.g. compression noise.")
    a_text, b_text = a.text(), b.text()
    pixels_match = not regions and changed_share == 0.0
    # When the pixels match, any difference between the two OCR readings is OCR noise, not a change.
    if (a_text or b_text) and not pixels_match:
        removed, added = _word_changes(a_text, b_text)
        if not removed and not added:
            sentences.append("The text read by OCR is the same in both.")
        else:
            if removed:
                sentences.append(f"Text only in {first}: {_quote_words(removed)}.")
            if added:
                sentences.append(f"Text only in {second}: {_quote_words(added)}.")
    faces_a, faces_b = len(a.faces), len(b.faces)
    if faces_a != faces_b:
        sentences.append(f"Faces detected: {faces_a} in {first}, {faces_b} in {second}.")
    return " ".join(_capitalise(s) for s in sentences)


def _percent(share: float) -> str:
    """``0.237`` -> ``"about 24%"``, ``0.0042`` -> ``"about 0.4%"``, below 0.1% -> ``"under 0.1%"``."""
    value = share * 100
    if value >= 1:
        return f"about {value:.0f}%"
    return f"about {value:.1f}%" if value >= 0.1 else "under 0.1%"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]
