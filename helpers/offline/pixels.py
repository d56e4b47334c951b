"""What the pixels of an image say, without a model: frontal faces, and where two images differ. Used by
:mod:`helpers.offline.analysis` (which re-exports these names); the difference is taught in
notebooks/03_multiple_images.ipynb. Colour names are :mod:`helpers.offline.colours`.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from PIL import Image

from helpers.ocr import load_rgb

# Face detection: OpenCV's frontal-face Haar cascade on a grey copy whose long side is at most _FACE_SIDE px.
# Tuned on scikit-image's sample photos, a bar chart and a page of text: minNeighbors=6 and a minimum face
# size of 6% of the short side keep texture and glyphs from looking like faces; faces smaller than that are
# not reported.
_FACE_CASCADE_FILE = "haarcascade_frontalface_default.xml"
_FACE_SIDE = 512
_FACE_MIN_FRACTION = 0.06
_FACE_SCALE_FACTOR = 1.15
_FACE_MIN_NEIGHBORS = 6

# Pixel difference: both images at a common size (long side _DIFF_SIDE), changed = a channel differs by more
# than _DIFF_THRESHOLD of 255 after a light blur (absorbs JPEG noise); regions smaller than _DIFF_MIN_AREA of
# the image are ignored (the missing apple of images/spot_difference_*.png covers 0.11%).
_DIFF_SIDE = 320
_DIFF_THRESHOLD = 40
_DIFF_MIN_AREA = 0.0008
_DIFF_MAX_REGIONS = 5


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
            _face_cascade = cv2.CascadeClassifier(cv2.data.haarcascades + _FACE_CASCADE_FILE)
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


# --- where two images differ ------------------------------------------------------------------------------

_LOCATIONS = (("top-left", "top", "top-right"), ("left", "centre", "right"),
              ("bottom-left", "bottom", "bottom-right"))


def location_name(cx: float, cy: float) -> str:
    """Name the ninth of the image that the point ``(cx, cy)`` (fractions of width/height) falls in.

    >>> location_name(0.5, 0.1), location_name(0.9, 0.9)
    ('top', 'bottom-right')
    """
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
        regions.append((location_name((x + bw / 2) / w, (y + bh / 2) / h), share, box))
    regions.sort(key=lambda item: (-item[1], item[2]))
    return changed_share, regions[:_DIFF_MAX_REGIONS]
