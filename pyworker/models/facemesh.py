"""MediaPipe Face Mesh: 468 points on a face from a 192x192 crop (face_weights.MESH, converted to ONNX).

Input 1x192x192x3 RGB in [0, 1] (NHWC); outputs 1404 values (x, y, z of 468 points, x and y in the crop's
pixels) and one logit: whether the crop holds a face. The crop is the caller's (pipeline/face.py): a square
around the face, turned so the eyes are level, as MediaPipe's own face_landmark_front graph makes it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from .runtime import session_options

SIZE = 192


class FaceMesh:
    def __init__(self, weights: Path) -> None:
        self.session = ort.InferenceSession(str(weights), session_options(1), providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    def run(
        self, rgb: Image.Image, centre: tuple[float, float], side: float, degrees: float
    ) -> tuple[np.ndarray, float]:
        """The mesh of the square of `side` px centred on `centre`, turned by `degrees` (the angle of its
        x axis in the image, y down: positive = clockwise on screen).

        Returns (468x2 float64 points in rgb's pixels, presence 0-1).
        """
        k = side / SIZE
        factor = int(k // 2)
        if factor >= 2:
            # Sampling a large face straight to 192 px would alias (bilinear reads 4 pixels of many): box-reduce
            # the square's surroundings first, so the crop is sampled from at most 2x its size.
            r = side * 0.75  # over the half-diagonal (0.707 side)
            left, top = math.floor(centre[0] - r), math.floor(centre[1] - r)
            region = rgb.crop((left, top, math.ceil(centre[0] + r), math.ceil(centre[1] + r))).reduce(factor)
            inner = ((centre[0] - left) / factor, (centre[1] - top) / factor)
            xy, presence = self.run(region, inner, side / factor, degrees)
            return xy * factor + np.asarray([left, top], dtype=np.float64), presence
        t = math.radians(degrees)
        c, s = math.cos(t), math.sin(t)
        # Crop pixel (u, v) -> image (x, y): x = cx + k*(c*(u - 96) - s*(v - 96)), y = cy + k*(s*(u - 96) + c*(v - 96))
        half = SIZE / 2
        a, b, d, e = k * c, -k * s, k * s, k * c
        x0 = centre[0] - a * half - b * half
        y0 = centre[1] - d * half - e * half
        crop = rgb.transform((SIZE, SIZE), Image.Transform.AFFINE, (a, b, x0, d, e, y0), Image.Resampling.BILINEAR)
        tensor = np.asarray(crop, dtype=np.float32)[np.newaxis] / np.float32(255.0)
        points, flag = self.session.run(None, {self._input: tensor})
        uv = points.reshape(-1, 3)[:, :2].astype(np.float64)
        xy = np.empty_like(uv)
        xy[:, 0] = x0 + a * uv[:, 0] + b * uv[:, 1]
        xy[:, 1] = y0 + d * uv[:, 0] + e * uv[:, 1]
        presence = 1.0 / (1.0 + math.exp(-max(-80.0, min(80.0, float(flag.ravel()[0])))))
        return xy, presence
