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

Results are cached by the SHA-256 of the image bytes, in memory and on disk (:mod:`helpers.offline.stored`), so
re-running a notebook, or restarting its kernel, does not analyse the same image twice. Every notebook that runs offline gets its answers from here; the OCR part is taught in
notebooks/05_handwriting_ocr.ipynb.

>>> from helpers.offline.analysis import analyze
>>> report = analyze(open("images/astronaut.jpg", "rb").read())      # doctest: +SKIP
>>> report.orientation, len(report.faces)                            # doctest: +SKIP
('square', 1)
"""

from __future__ import annotations

import difflib
import hashlib
import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import imagehash
from PIL import Image

from helpers.images import sniff_mime
from helpers.ocr import OcrLine, lines_to_text, load_rgb, normalise_text, ocr_lines
from helpers.ocr import warm_up as ocr_warm_up
from helpers.offline import stored
from helpers.offline.colours import analyse_colours, colour_name, dominant_colours
from helpers.offline.pixels import changed_regions, detect_faces
from helpers.writing import IDEOGRAPHS_AND_KANA

__all__ = [
    "CACHE_SIZE",
    "NEAR_DUPLICATE_MAX_DISTANCE",
    "ImageReport",
    "OcrLine",
    "analyze",
    "cache_info",
    "changed_regions",
    "clear_cache",
    "difference",
    "dominant_colours",
    "colour_name",
    "detect_faces",
    "hash_distance",
    "near_duplicates",
    "warm_up",
]

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


def analyze(data: bytes) -> ImageReport:
    """Analyse encoded image bytes (PNG, JPEG, WebP, GIF...) and return an :class:`ImageReport`.

    Thread-safe and cached by the SHA-256 of ``data``: a repeated image costs a dictionary look-up, and two
    concurrent requests for the same new image compute it once (the second waits for the first). Raises
    ``helpers.errors.UnsupportedImageError`` for bytes Pillow cannot decode.

    >>> report = analyze(open("images/astronaut.jpg", "rb").read())   # doctest: +SKIP
    >>> report.width, report.height                                   # doctest: +SKIP
    (512, 512)
    """
    data = bytes(data)
    key = hashlib.sha256(data).hexdigest()
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
            report = _from_stored(stored.load(key))
            if report is None:
                report = _compute(data, key)
                stored.save(key, asdict(report))
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
    """A report kept on disk by :mod:`helpers.offline.stored` (a restarted kernel, another lesson), or None."""
    try:
        return None if raw is None else ImageReport(**{
            **raw, "lines": tuple(OcrLine(line["text"], tuple(map(tuple, line["box"])), line["score"])
                                  for line in raw["lines"]),
            "faces": tuple(map(tuple, raw["faces"])), "colours": tuple(map(tuple, raw["colours"])),
            "thirds": tuple(raw["thirds"]), "columns": tuple(raw["columns"])})
    except (KeyError, TypeError, ValueError):
        return None


def _compute(data: bytes, key: str) -> ImageReport:
    rgb = load_rgb(data)  # raises the course's UnsupportedImageError / ImageTooLargeError
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
        mime_type=sniff_mime(data) or "application/octet-stream",
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


def difference(a: ImageReport, b: ImageReport, a_bytes: bytes, b_bytes: bytes, *,
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
    changed_share, regions = changed_regions(a_bytes, b_bytes)
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
