"""MediaPipe Iris: an eye's lids and iris from a 64x64 crop (face_weights.IRIS, converted to ONNX).

Input 1x64x64x3 RGB in [0, 1] (NHWC) of the eye on the image's left (the person's right eye; the other one is
mirrored first, as MediaPipe's iris_landmark_cpu graph does); outputs 71 eye points (x, y, z: the first 16 are
the eye's contour, in Face Mesh's order: corner 0, lower lid 1-7, other corner 8, upper lid 9-15; the rest
the brow and the eye's surroundings) and 5 iris points (centre, then four on its rim), x and y in the crop's
pixels. Unlike the 468-point Face Mesh, whose lid points stay apart on a closed eye, its lids meet when the
eye closes: pipeline/face_quality.eyes_open reads them (docs/id-photos.md#face-checks).

The crop is MediaPipe's: a square 2.3 x the eye's width (corner to corner), centred between the corners and
turned so the corners are level.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from .runtime import session_options

SIZE = 64
CROP_SCALE = 2.3  # the crop's side over the eye's width (iris_landmark_landmarks_to_roi)
CONTOUR = 16  # the first 16 of the 71 eye points: the eye's outline


class IrisLandmark:
    def __init__(self, weights: Path) -> None:
        self.session = ort.InferenceSession(str(weights), session_options(1), providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    def run(
        self, rgb: Image.Image, corner_a: tuple[float, float], corner_b: tuple[float, float], mirror: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """The eye between two corners of `rgb` (`corner_a` on the image's left); `mirror` for the eye on the
        image's right (the model knows the other side only).

        Returns (16x2 contour, 5x2 iris), float64, in rgb's pixels.
        """
        (ax, ay), (bx, by) = corner_a, corner_b
        width = max(1e-3, math.hypot(bx - ax, by - ay))
        cx, cy = (ax + bx) / 2, (ay + by) / 2
        side = width * CROP_SCALE
        factor = int(side / SIZE // 2)
        if factor >= 2:
            # A large eye: box-reduce its surroundings first so the bilinear sample does not alias (facemesh.py).
            r = side * 0.75
            left, top = math.floor(cx - r), math.floor(cy - r)
            region = rgb.crop((left, top, math.ceil(cx + r), math.ceil(cy + r))).reduce(factor)
            a = ((ax - left) / factor, (ay - top) / factor)
            b = ((bx - left) / factor, (by - top) / factor)
            contour, iris = self.run(region, a, b, mirror)
            shift = np.asarray([left, top], dtype=np.float64)
            return contour * factor + shift, iris * factor + shift
        k = side / SIZE
        c, s = (bx - ax) / width, (by - ay) / width
        # Crop pixel (u, v) -> image (x, y): x = cx + k*(c*(u - 32) - s*(v - 32)), y = cy + k*(s*(u - 32) + c*(v - 32))
        half = SIZE / 2
        m = (k * c, -k * s, cx - k * c * half + k * s * half, k * s, k * c, cy - k * s * half - k * c * half)
        crop = rgb.transform((SIZE, SIZE), Image.Transform.AFFINE, m, Image.Resampling.BILINEAR)
        if mirror:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        tensor = np.asarray(crop, dtype=np.float32)[np.newaxis] / np.float32(255.0)
        eye, iris = (o.reshape(-1, 3)[:, :2].astype(np.float64) for o in self.session.run(None, {self._input: tensor}))
        if eye.shape[0] < iris.shape[0]:  # outputs come in the model's order: 71 eye points, 5 iris points
            eye, iris = iris, eye
        uv = np.concatenate([eye[:CONTOUR], iris])
        if mirror:
            uv[:, 0] = SIZE - uv[:, 0]
        xy = np.empty_like(uv)
        xy[:, 0] = m[2] + m[0] * uv[:, 0] + m[1] * uv[:, 1]
        xy[:, 1] = m[5] + m[3] * uv[:, 0] + m[4] * uv[:, 1]
        return xy[:CONTOUR], xy[CONTOUR:]
