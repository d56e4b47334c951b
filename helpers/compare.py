"""Where two images differ, pixel by pixel: the comparison taught in notebooks/03_multiple_images.ipynb and used
by the offline backend (a multi-image question, a video's scene cuts).

>>> from PIL import Image
>>> from helpers import changed_regions
>>> before = Image.new("RGB", (200, 100), "white"); after = before.copy(); after.paste((255, 0, 0), (150, 70, 190, 95))
>>> share, regions = changed_regions(before, after)
>>> round(share, 2), regions[0][0]
(0.05, 'bottom-right')
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from helpers.ocr import load_rgb

__all__ = ["changed_regions", "location_name"]

# Pixel difference: both images at a common size (long side _DIFF_SIDE), changed = a channel differs by more
# than _DIFF_THRESHOLD of 255 after a light blur (absorbs JPEG noise); regions smaller than _DIFF_MIN_AREA of
# the image are ignored (the missing apple of images/spot_difference_*.png covers 0.11%).
_DIFF_SIDE = 320
_DIFF_THRESHOLD = 40
_DIFF_MIN_AREA = 0.0008
_DIFF_MAX_REGIONS = 5


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
    regions: list[tuple[str, float, tuple[float, ...]]] = []
    for label in range(1, count):
        x, y, bw, bh, _area = (int(v) for v in stats[label])
        share = bw * bh / (w * h)
        if share < _DIFF_MIN_AREA:
            continue
        box = (round(x / w, 3), round(y / h, 3), round((x + bw) / w, 3), round((y + bh) / h, 3))
        regions.append((location_name((x + bw / 2) / w, (y + bh / 2) / h), share, box))
    regions.sort(key=lambda item: (-item[1], item[2]))
    return changed_share, regions[:_DIFF_MAX_REGIONS]
