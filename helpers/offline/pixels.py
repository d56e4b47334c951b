"""What the pixels of an image say, without a model: frontal faces, and where two images differ. Used by
:mod:`helpers.offline.analysis` (which re-exports these names); the difference is taught in
notebooks/03_multiple_images.ipynb. Colour names are :mod:`helpers.offline.colours`.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from PIL import Image

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
