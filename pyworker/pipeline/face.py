"""Face detection with landmarks: YuNet (libfacedetection) through the `yuface` wheel, imported lazily.

Chosen over MediaPipe BlazeFace "front" by measuring both on the same photos
(docs/id-photos.md#detector): YuNet finds faces at any size in the frame and
both people of a side-by-side photo; BlazeFace front only sees faces that fill
a selfie-like frame. Neither places the eyes precisely enough to level a head
(YuNet's eye landmarks stay near an upright template: a head rolled by 8°
reads as 1.4°), so each eye is then moved to its pupil, the darkest point near
the landmark (`_pupil`), which reads the same head as 7.9°.

A worker that never crops never imports yuface (a 474 kB wheel).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from ..errors import WorkerError

Box = tuple[int, int, int, int]
Point = tuple[float, float]

# The detector sees a copy whose longest side is at most this: YuNet's cost
# grows with the pixel count (40-110 ms at 960 px on one core; yuface warns
# above 960); the pupils are then found at full resolution, and an ID
# photo's face is large.
DETECT_SIDE = 640
# YuNet's own score threshold (0-1). 0.5 is the library's default.
MIN_SCORE = 0.5
# Pupil search: a square window of half-side PUPIL_WINDOW x eye distance around
# each eye landmark, blurred by PUPIL_BLUR x eye distance (so eyelashes and
# noise do not win), with a penalty growing with the distance from the
# landmark (PUPIL_PULL grey levels at the window's edge) so an eyebrow or a
# dark frame does not.
PUPIL_WINDOW = 0.22
PUPIL_BLUR = 0.04
PUPIL_PULL = 40.0
# The pupil's centre is the weighted mean of the pixels within PUPIL_SPOT x eye
# distance of the darkest one and less than PUPIL_DEPTH grey levels above it.
PUPIL_SPOT = 0.08
# An open eye's iris is at least this many grey levels darker than the median
# of its window (skin, white of the eye); below it the landmark is kept.
PUPIL_CONTRAST = 40.0
PUPIL_DEPTH = 12.0
LANDMARK_NAMES = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")

_lock = threading.Lock()
_yuface: Any = None


@dataclass(frozen=True)
class Face:
    """One detection, in the pixel coordinates of the image it was found in.

    The eyes are named from the person's side: `right_eye` is on the image's left.
    """

    box: Box  # left, top, right, bottom
    score: float  # 0-1
    right_eye: Point
    left_eye: Point
    nose: Point
    mouth_right: Point
    mouth_left: Point

    @property
    def eyes_mid(self) -> Point:
        return ((self.right_eye[0] + self.left_eye[0]) / 2, (self.right_eye[1] + self.left_eye[1]) / 2)

    @property
    def mouth_mid(self) -> Point:
        return ((self.mouth_right[0] + self.mouth_left[0]) / 2, (self.mouth_right[1] + self.mouth_left[1]) / 2)

    @property
    def eye_distance(self) -> float:
        return math.dist(self.right_eye, self.left_eye)

    @property
    def roll_deg(self) -> float:
        """Angle of the eye line from level, degrees; positive when the image-right eye is lower."""
        (x1, y1), (x2, y2) = self.right_eye, self.left_eye
        return math.degrees(math.atan2(y2 - y1, x2 - x1))

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def landmarks(self) -> tuple[Point, Point, Point, Point, Point]:
        """The five points in LANDMARK_NAMES order (the fields' order)."""
        return (self.right_eye, self.left_eye, self.nose, self.mouth_right, self.mouth_left)

    def map(self, fn: Callable[[Point], Point], box: Box | None = None) -> Face:
        """This face with `fn` applied to each of the five landmarks; the box is `box`, or kept when None."""
        return Face(self.box if box is None else box, self.score, *(fn(pt) for pt in self.landmarks))

    def scaled(self, k: float) -> Face:
        box = tuple(round(v * k) for v in self.box)
        return self.map(lambda pt: (pt[0] * k, pt[1] * k), box)  # type: ignore[arg-type]

    def rotated(self, degrees: float, centre: Point) -> Face:
        """Where the landmarks go when the image is turned as PIL's rotate(degrees, center=centre) does.

        The box is kept (the box of a turned box would be a guess); the head is measured from the landmarks.
        """
        t = math.radians(degrees)
        c, s = math.cos(t), math.sin(t)

        def turn(pt: Point) -> Point:
            dx, dy = pt[0] - centre[0], pt[1] - centre[1]
            return (centre[0] + dx * c + dy * s, centre[1] - dx * s + dy * c)

        return self.map(turn)

    def to_wire(self, k: float = 1.0) -> dict[str, Any]:
        """For meta: box and landmarks scaled by `k` (to input pixels), as plain ints and floats (never NumPy's)."""
        f = self.scaled(k)
        return {
            "box": [int(v) for v in f.box],
            "score": float(round(self.score, 3)),
            "landmarks": {
                n: [float(round(x, 1)), float(round(y, 1))]
                for n, (x, y) in zip(LANDMARK_NAMES, f.landmarks, strict=True)
            },
        }


def _detector() -> Any:
    global _yuface
    with _lock:
        if _yuface is None:
            # libfacedetection runs on OpenMP: with its default (one thread per
            # core) it is 5-10x slower on a shared 2-core box than with one
            # (400-600 ms vs 40-110 ms), and a worker serves one job at a time.
            # The variable is read when libgomp loads, i.e. at this import.
            os.environ.setdefault("OMP_NUM_THREADS", "1")
            try:
                import yuface
            except ImportError as exc:
                raise WorkerError(
                    "internal",
                    "crop: 'face' needs yuface==2023.5.1 (pip install 'pyworker[face]'; wheels for CPython 3.10-3.11)",
                ) from exc
            _yuface = yuface
        return _yuface


def loaded() -> bool:
    """Whether this process has loaded the detector (for tests and stats)."""
    return _yuface is not None


def _pupil(gray: Image.Image, eye: Point, eye_distance: float) -> Point:
    """The darkest point near `eye` (the pupil), or `eye` itself when the window leaves the image."""
    r = max(3, round(PUPIL_WINDOW * eye_distance))
    x0, y0 = round(eye[0]) - r, round(eye[1]) - r
    if x0 < 0 or y0 < 0 or x0 + 2 * r + 1 > gray.width or y0 + 2 * r + 1 > gray.height:
        return eye
    window = gray.crop((x0, y0, x0 + 2 * r + 1, y0 + 2 * r + 1)).filter(
        ImageFilter.GaussianBlur(max(1.0, PUPIL_BLUR * eye_distance))
    )
    arr = np.asarray(window, dtype=np.float32)
    if float(np.median(arr)) - float(arr.min()) < PUPIL_CONTRAST:
        return eye  # no dark disc: a closed eye, sunglasses, deep shadow; keep the landmark
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    arr = arr + PUPIL_PULL * (xx * xx + yy * yy) / (r * r)
    iy, ix = np.unravel_index(int(np.argmin(arr)), arr.shape)
    # Sub-pixel: the darkness-weighted centre of the pixels near the darkest one. At
    # 40 px between the eyes one pixel is 1.4° of roll, too coarse to level a head.
    k = max(1, round(PUPIL_SPOT * eye_distance))
    ya, yb, xa, xb = max(0, iy - k), min(arr.shape[0], iy + k + 1), max(0, ix - k), min(arr.shape[1], ix + k + 1)
    weight = np.clip(float(arr[iy, ix]) + PUPIL_DEPTH - arr[ya:yb, xa:xb], 0, None)
    sy, sx = np.mgrid[ya:yb, xa:xb]
    total = float(weight.sum())
    if total > 0:
        return (x0 + float((sx * weight).sum()) / total, y0 + float((sy * weight).sum()) / total)
    return (float(x0 + ix), float(y0 + iy))


def detect(rgb: Image.Image) -> list[Face]:
    """Faces in `rgb` with their landmarks, in its own pixel coordinates, best score first."""
    yuface = _detector()
    w, h = rgb.size
    small = rgb
    if max(w, h) > DETECT_SIDE:
        factor = max(1, max(w, h) // DETECT_SIDE)
        small = rgb.reduce(factor) if factor > 1 else rgb  # a box-filter reduce first: a few ms
        if max(small.size) > DETECT_SIDE:
            k = DETECT_SIDE / max(small.size)
            small = small.resize((max(1, round(small.width * k)), max(1, round(small.height * k))))
    bgr = np.ascontiguousarray(np.asarray(small.convert("RGB"))[:, :, ::-1])
    scores, boxes, marks = yuface.detect(bgr, MIN_SCORE)
    kx, ky = w / small.width, h / small.height
    gray = rgb.convert("L")
    faces = []
    for score, (x, y, bw, bh), m in zip(scores, boxes.astype(float), marks.astype(float), strict=True):
        # Plain floats from here on: NumPy scalars would reach meta and the compliance report.
        pts = [(float(m[2 * i] * kx), float(m[2 * i + 1] * ky)) for i in range(5)]
        distance = math.dist(pts[0], pts[1])
        right_eye, left_eye = _pupil(gray, pts[0], distance), _pupil(gray, pts[1], distance)
        box = (round(x * kx), round(y * ky), round((x + bw) * kx), round((y + bh) * ky))  # round(): a plain int
        faces.append(Face(box, float(score) / 100, right_eye, left_eye, pts[2], pts[3], pts[4]))
    faces.sort(key=lambda f: -f.score)
    return faces
