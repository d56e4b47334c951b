"""Local image analysis for the offline backend: what it can honestly say about an image without a model.

The offline server (``helpers.offline.server``) has no language model. For every image in a request it calls
:func:`analyze`, and ``helpers.offline.answers.compose`` turns the reports into the answer text. A report holds:

- the text, read with local OCR (:mod:`helpers.ocr`, RapidOCR with its bundled PP-OCRv4 models), in reading order;
- frontal faces, found with the Haar cascade that ships inside opencv-python;
- size and orientation, and the dominant colours in plain names with their share of the image;
- a perceptual hash (``imagehash.phash``) that finds identical and near-identical images across a request.

:func:`difference` compares two images (identical bytes, near-identical, where the pixels changed, which OCR
words were added or removed); :func:`near_duplicates` lists the near-identical pairs of a request.

Results are cached by the SHA-256 of the image bytes, so re-running a notebook does not analyse the same image
twice. Every notebook that runs offline gets its answers from here; the OCR part is taught in
notebooks/05_handwriting_ocr.ipynb.

>>> from helpers.offline.analysis import analyze
>>> report = analyze(open("images/astronaut.jpg", "rb").read())      # doctest: +SKIP
>>> report.orientation, len(report.faces)                            # doctest: +SKIP
('square', 1)
"""

from __future__ import annotations

import colorsys
import difflib
import hashlib
import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import imagehash
import numpy as np
from PIL import Image

from helpers.images import sniff_mime
from helpers.ocr import OcrLine, lines_to_text, load_rgb, normalise_text, ocr_lines
from helpers.ocr import warm_up as ocr_warm_up

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

# Face detection: OpenCV's frontal-face Haar cascade on a grey copy whose long side is at most _FACE_SIDE px.
# Tuned on scikit-image's sample photos, a bar chart and a page of text: minNeighbors=6 and a minimum face
# size of 6% of the short side keep texture and glyphs from looking like faces; faces smaller than that are
# not reported.
_FACE_CASCADE_FILE = "haarcascade_frontalface_default.xml"
_FACE_SIDE = 512
_FACE_MIN_FRACTION = 0.06
_FACE_SCALE_FACTOR = 1.15
_FACE_MIN_NEIGHBORS = 6

# Colours: a thumbnail quantised by Pillow to a few representative colours, each named by hue/saturation/value.
_COLOUR_THUMBNAIL = 128
_COLOUR_QUANTISE = 16
_COLOUR_MIN_SHARE = 0.05
_COLOUR_MAX_NAMES = 5

# Pixel difference: both images at a common size (long side _DIFF_SIDE), changed = a channel differs by more
# than _DIFF_THRESHOLD of 255 after a light blur (absorbs JPEG noise); regions smaller than _DIFF_MIN_AREA of
# the image are ignored (the missing apple of images/spot_difference_*.png covers 0.11%).
_DIFF_SIDE = 320
_DIFF_THRESHOLD = 40
_DIFF_MIN_AREA = 0.0008
_DIFF_MAX_REGIONS = 5


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
            report = _compute(data, key)
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


def _compute(data: bytes, key: str) -> ImageReport:
    rgb = load_rgb(data)  # raises the course's UnsupportedImageError / ImageTooLargeError
    width, height = rgb.size
    # Faces, colours and the hash (about 0.1 s) run on the other core while OCR (the slow part) runs here;
    # OpenCV, Pillow and ONNX Runtime release the GIL while they compute.
    others = _executor.submit(lambda: (detect_faces(rgb), dominant_colours(rgb), str(imagehash.phash(rgb))))
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
        colours=colours,
        phash=phash,
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
    dominant_colours(blank)
    imagehash.phash(blank)


def _orientation(width: int, height: int) -> str:
    if abs(width - height) <= SQUARE_TOLERANCE * max(width, height):
        return "square"
    return "landscape" if width > height else "portrait"


# --- faces -----------------------------------------------------------------------------------------------

_face_cascade: cv2.CascadeClassifier | None = None
_face_lock = threading.Lock()


def detect_faces(image: Image.Image) -> tuple[tuple[int, int, int, int], ...]:
    """Frontal faces as ``(x, y, w, h)`` boxes in pixels of ``image``, sorted left to right.

    Uses OpenCV's ``haarcascade_frontalface_default.xml`` (shipped in opencv-python). It finds upright,
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
            _face_cascade = cv2.CascadeClassifier(cv2.data.haarcascades + _FACE_CASCADE_FILE)
            if _face_cascade.empty():
                raise RuntimeError(f"OpenCV could not load {_FACE_CASCADE_FILE}; reinstall opencv-python.")
        found = _face_cascade.detectMultiScale(
            pixels, scaleFactor=_FACE_SCALE_FACTOR, minNeighbors=_FACE_MIN_NEIGHBORS, minSize=(min_size, min_size)
        )
    boxes = (
        (round(x / scale), round(y / scale), round(w / scale), round(h / scale))
        for x, y, w, h in (tuple(int(v) for v in row) for row in found)
    )
    return tuple(sorted(boxes))


# --- colours ---------------------------------------------------------------------------------------------

def colour_name(rgb: tuple[int, int, int]) -> str:
    """A plain colour name for an RGB triple, from its hue, saturation and brightness.

    Names: black, white, grey, red, orange, yellow, olive, green, teal, blue, purple, pink, brown. Dark or
    greyish oranges (tan, beige, wood) are brown; dark yellows are olive.

    >>> colour_name((255, 0, 0)), colour_name((20, 40, 200)), colour_name((128, 128, 128))
    ('red', 'blue', 'grey')
    >>> colour_name((139, 90, 43)), colour_name((182, 150, 132)), colour_name((245, 235, 200))
    ('brown', 'brown', 'white')
    >>> colour_name((255, 182, 193)), colour_name((255, 140, 0)), colour_name((250, 220, 20))
    ('pink', 'orange', 'yellow')
    """
    r, g, b = (c / 255 for c in rgb)
    hue, sat, val = colorsys.rgb_to_hsv(r, g, b)
    deg = hue * 360
    if val < 0.2:
        return "black"
    if sat < 0.18 or (sat < 0.28 and val < 0.45) or (sat < 0.22 and val > 0.9):  # greys; cream is white
        if val > 0.85:
            return "white"
        return "grey" if val > 0.35 else "black"
    if 15 <= deg < 50 and (val < 0.65 or sat < 0.45):
        return "brown"
    if (deg < 15 or deg >= 330) and sat < 0.5 and val > 0.6:
        return "pink"
    if deg < 15 or deg >= 345:
        return "red"
    if deg < 40:
        return "orange"
    if deg < 70:
        return "yellow" if val >= 0.55 else "olive"
    if deg < 160:
        return "green"
    if deg < 190:
        return "teal"
    if deg < 260:
        return "blue"
    if deg < 290:
        return "purple"
    return "pink"


def dominant_colours(image: Image.Image) -> tuple[tuple[str, float], ...]:
    """The main colours of ``image`` as ``(name, share)`` pairs, largest share first.

    The image is shrunk to a thumbnail, quantised by Pillow (median cut) to 16 representative colours, each
    named with :func:`colour_name`; shares of the same name are added. Names covering less than 5% of the
    image are left out (so shares may sum to less than 1); at most 5 names; shares rounded to 2 decimals.

    >>> dominant_colours(Image.new("RGB", (10, 10), (250, 10, 10)))
    (('red', 1.0),)
    """
    thumb = image.convert("RGB")
    thumb.thumbnail((_COLOUR_THUMBNAIL, _COLOUR_THUMBNAIL), Image.Resampling.BILINEAR)
    quantised = thumb.quantize(colors=_COLOUR_QUANTISE, method=Image.Quantize.MEDIANCUT)
    palette = quantised.getpalette() or []
    total = thumb.width * thumb.height
    shares: dict[str, int] = {}
    for count, index in quantised.getcolors(_COLOUR_QUANTISE) or []:
        rgb = tuple(palette[3 * index: 3 * index + 3])
        name = colour_name(rgb)  # type: ignore[arg-type]
        shares[name] = shares.get(name, 0) + count
    ranked = sorted(((name, round(count / total, 2)) for name, count in shares.items()),
                    key=lambda item: (-item[1], item[0]))
    return tuple((name, share) for name, share in ranked if share >= _COLOUR_MIN_SHARE)[:_COLOUR_MAX_NAMES]


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


_LOCATIONS = (("top-left", "top", "top-right"), ("left", "centre", "right"),
              ("bottom-left", "bottom", "bottom-right"))


def _location(cx: float, cy: float) -> str:
    """Name the ninth of the image that the point ``(cx, cy)`` (fractions of width/height) falls in."""
    return _LOCATIONS[min(int(cy * 3), 2)][min(int(cx * 3), 2)]


def changed_regions(a_bytes: bytes | Image.Image, b_bytes: bytes | Image.Image) -> tuple[float, list[tuple[str, float, tuple[float, ...]]]]:
    """Where the pixels of two images differ, after resizing both to a common size.

    Returns ``(changed_share, regions)``: the share of pixels that changed, and up to 5 regions, largest
    first, each ``(location, area_share, (x0, y0, x1, y1))`` with the box in fractions of the image and the
    location one of top-left, top, top-right, left, centre, right, bottom-left, bottom, bottom-right.

    >>> before = Image.new("RGB", (200, 100), "white")
    >>> after = before.copy(); after.paste((255, 0, 0), (150, 70, 190, 95))
    >>> share, regions = changed_regions(before, after)   # PIL images work too
    >>> round(share, 2), [(where, round(area, 2)) for where, area, _ in regions]
    (0.05, [('bottom-right', 0.05)])
    """
    a_img, b_img = load_rgb(a_bytes), load_rgb(b_bytes)
    scale = _DIFF_SIDE / max(a_img.size)
    size = (max(8, round(a_img.width * scale)), max(8, round(a_img.height * scale)))
    a_px = np.asarray(a_img.resize(size, Image.Resampling.BILINEAR), dtype=np.int16)
    b_px = np.asarray(b_img.resize(size, Image.Resampling.BILINEAR), dtype=np.int16)
    a_px = cv2.GaussianBlur(a_px.astype(np.uint8), (3, 3), 0).astype(np.int16)
    b_px = cv2.GaussianBlur(b_px.astype(np.uint8), (3, 3), 0).astype(np.int16)
    mask = (np.abs(a_px - b_px).max(axis=2) > _DIFF_THRESHOLD).astype(np.uint8)
    changed_share = float(mask.mean())
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    count, _labels, stats, _centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    w, h = size
    regions = []
    for label in range(1, count):
        x, y, bw, bh, _area = (int(v) for v in stats[label])
        share = bw * bh / (w * h)
        if share < _DIFF_MIN_AREA:
            continue
        box = (round(x / w, 3), round(y / h, 3), round((x + bw) / w, 3), round((y + bh) / h, 3))
        regions.append((_location((x + bw / 2) / w, (y + bh / 2) / h), share, box))
    regions.sort(key=lambda item: (-item[1], item[2]))
    return changed_share, regions[:_DIFF_MAX_REGIONS]


_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\s\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


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
