"""Frontal-face detection: OpenCV's Haar cascade, imported lazily and loaded once per process.

A worker that never crops never imports cv2 (about 17 MB of RSS for the
import, another ~25 MB the first time the cascade runs). opencv-python-headless
must be 4.x: 5.x no longer ships CascadeClassifier nor the cascade files.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image

from ..errors import WorkerError

Box = tuple[int, int, int, int]

CASCADE = "haarcascade_frontalface_default.xml"
# The detector sees a grayscale copy whose longest side is at most this: the
# cascade's cost grows with the pixel count, and an ID photo's face is large.
DETECT_SIDE = 600
# Smallest face searched for, as a share of that copy's longest side (600 / 16
# = 37 px). Smaller faces would be upscaled several times into an ID crop
# anyway, and skipping them halves the detection time.
MIN_FACE_SHARE = 1 / 16
SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 5

_lock = threading.Lock()
_cascade: Any = None


def _detector() -> Any:
    global _cascade
    with _lock:
        if _cascade is None:
            try:
                import cv2
            except ImportError as exc:
                raise WorkerError(
                    "internal", "crop: 'face' needs opencv-python-headless 4.x (pip install -r requirements.txt)"
                ) from exc
            if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
                raise WorkerError(
                    "internal", f"OpenCV {cv2.__version__} has no Haar cascades: install opencv-python-headless 4.x"
                )
            # One job at a time per worker, and supervisors run one worker per core:
            # OpenCV's own thread pool would only oversubscribe the CPUs.
            cv2.setNumThreads(1)
            cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
            if cascade.empty():
                raise WorkerError("internal", f"Could not load the face cascade {CASCADE}")
            _cascade = cascade
        return _cascade


def loaded() -> bool:
    """Whether this process has loaded the detector (for tests and stats)."""
    return _cascade is not None


def detect(rgb: Image.Image) -> list[Box]:
    """Frontal faces in `rgb`, as (left, top, right, bottom) in its own pixel coordinates."""
    cascade = _detector()
    import cv2

    w, h = rgb.size
    # A box-filter reduce by an integer factor (a few ms), then a small resize to DETECT_SIDE.
    factor = max(1, max(w, h) // DETECT_SIDE)
    small = (rgb.reduce(factor) if factor > 1 else rgb).convert("L")
    if max(small.size) > DETECT_SIDE:
        k = DETECT_SIDE / max(small.size)
        small = small.resize((max(1, round(small.width * k)), max(1, round(small.height * k))))
    bx, by = w / small.width, h / small.height  # back to `rgb` pixels
    gray = cv2.equalizeHist(np.asarray(small))
    side = max(1, round(max(gray.shape) * MIN_FACE_SHARE))
    found = cascade.detectMultiScale(gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, minSize=(side, side))
    boxes = []
    for x, y, bw, bh in (tuple(int(v) for v in f) for f in found):
        boxes.append((round(x * bx), round(y * by), round((x + bw) * bx), round((y + bh) * by)))
    return boxes
