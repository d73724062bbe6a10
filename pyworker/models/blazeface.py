"""MediaPipe BlazeFace, the 256x256 "back camera" model: face boxes and six keypoints (face_weights.DETECTOR).

Input 1x256x256x3 RGB in [-1, 1] (NHWC, as converted by PINTO and keijiro); outputs the scores and boxes of
512 anchors on a 16x16 grid (stride 16, two per cell) and 384 on an 8x8 grid (stride 32, six per cell). Each
box is (dx, dy, w, h) and six keypoints (dx, dy): eye, eye, nose tip, mouth centre, ear, ear, in input pixels
relative to the anchor's centre. MediaPipe's own decoding (ssd_anchors_calculator, tensors_to_detections).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from .runtime import session_options

SIZE = 256
MIN_SCORE = 0.5  # MediaPipe's own threshold for its face detectors
NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold


def _anchors() -> np.ndarray:
    fine = [((x + 0.5) / 16, (y + 0.5) / 16) for y in range(16) for x in range(16) for _ in range(2)]
    coarse = [((x + 0.5) / 8, (y + 0.5) / 8) for y in range(8) for x in range(8) for _ in range(6)]
    return np.asarray(fine + coarse, dtype=np.float32) * SIZE


@dataclass(frozen=True)
class Detection:
    """In the pixel coordinates of the image given to detect()."""

    score: float
    box: tuple[float, float, float, float]  # left, top, right, bottom
    keypoints: tuple[tuple[float, float], ...]  # eye (image left), eye (image right), nose, mouth, ear, ear


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class BlazeFace:
    def __init__(self, weights: Path) -> None:
        self.session = ort.InferenceSession(str(weights), session_options(1), providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name
        self._anchors = _anchors()

    def detect(self, rgb: Image.Image) -> list[Detection]:
        """Faces in `rgb` (any size; it is scaled to fit 256 px and padded square), best score first."""
        w, h = rgb.size
        k = SIZE / max(w, h)
        small = rgb.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.BILINEAR, reducing_gap=3.0)
        square = np.zeros((1, SIZE, SIZE, 3), dtype=np.float32) - 1.0  # pad with black, as MediaPipe
        square[0, : small.height, : small.width] = np.asarray(small, dtype=np.float32) / 127.5 - 1.0
        s_fine, s_coarse, b_fine, b_coarse = self.session.run(None, {self._input: square})
        logits = np.clip(np.concatenate([s_fine[0, :, 0], s_coarse[0, :, 0]]), -80, 80)
        scores = 1.0 / (1.0 + np.exp(-logits))
        raw = np.concatenate([b_fine[0], b_coarse[0]])
        # Back to rgb's pixels (the pad is after the image, so the origin is shared).
        sx, sy = w / small.width, h / small.height
        found: list[Detection] = []
        for i in np.argsort(-scores):
            score = float(scores[i])
            if score < MIN_SCORE:
                break
            ax, ay = self._anchors[i]
            cx, cy, bw, bh = ax + raw[i, 0], ay + raw[i, 1], raw[i, 2], raw[i, 3]
            left, top, right, bottom = (cx - bw / 2) * sx, (cy - bh / 2) * sy, (cx + bw / 2) * sx, (cy + bh / 2) * sy
            box = (float(left), float(top), float(right), float(bottom))
            if any(_iou(box, d.box) > NMS_IOU for d in found):
                continue
            pts = tuple((float((ax + raw[i, 4 + 2 * j]) * sx), float((ay + raw[i, 5 + 2 * j]) * sy)) for j in range(6))
            if pts[0][0] > pts[1][0]:
                pts = (pts[1], pts[0], *pts[2:])
            found.append(Detection(score, box, pts))
        return found
