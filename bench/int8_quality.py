"""INT8 masks against FP32 (issue 20): IoU and mean |Δα| per photo, for u2netp and modnet.

    .venv/bin/python bench/int8_quality.py [--photos DIR ...] [--models u2netp,modnet]

Default photos: samples/ plus, when present, ../shared/portraits and ../shared/evidence (evaluation only: never
copied into the repository). Each model's FP32 and INT8 files run through pyworker's own pre- and
post-processing (MaskModel.predict); IoU of the masks thresholded at 128, mean |Δα| on the 0-255 scale.

The "FP32 vs FP32 ±1" columns are the metric's own noise floor on that photo: FP32 against FP32 on the same
photo with every pixel value moved by -1, 0 or +1 (seeded, invisible). Where FP32 itself falls below a
threshold under that perturbation, no approximation of FP32 (INT8 or another) can be held to it there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyworker.models.registry import INT8, MODELS
from pyworker.models.store import find_weights

REPO = Path(__file__).resolve().parent.parent
SHARED = Path("/work/shared")


def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """IoU of the masks at 128, and mean |a - b| on 0-255."""
    fa, fb = a >= 128, b >= 128
    union = np.logical_or(fa, fb).sum()
    iou = 1.0 if union == 0 else float(np.logical_and(fa, fb).sum() / union)
    return iou, float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def nudged(rgb: Image.Image, seed: int = 0) -> Image.Image:
    """The photo with each channel value moved by -1, 0 or +1 (seeded): a difference no eye sees."""
    arr = np.asarray(rgb, dtype=np.int16)
    step = np.random.default_rng(seed).integers(-1, 2, arr.shape, dtype=np.int16)
    return Image.fromarray(np.clip(arr + step, 0, 255).astype(np.uint8))


def photos(dirs: list[Path]) -> list[Path]:
    exts = {".jpg", ".jpeg", ".png"}
    return [
        p
        for d in dirs
        if d.is_dir()
        for p in sorted(d.iterdir())
        if p.suffix.lower() in exts and ".u2netp" not in p.name
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, nargs="*")
    ap.add_argument("--models", default="u2netp,modnet")
    a = ap.parse_args()
    dirs = a.photos or [REPO / "samples", SHARED / "portraits", SHARED / "evidence"]
    files = photos(dirs)
    for name in a.models.split(","):
        fp32 = MODELS[name](find_weights(name), threads=2)
        int8_cls = INT8[name]
        int8 = int8_cls(find_weights(int8_cls.name), threads=2)
        rows = []
        for path in files:
            with Image.open(path) as im:
                rgb = ImageOps.exif_transpose(im).convert("RGB")
            ref = np.asarray(fp32.predict(rgb)).copy()
            iou, mad = compare(ref, np.asarray(int8.predict(rgb)))
            niou, nmad = compare(ref, np.asarray(fp32.predict(nudged(rgb))))
            rows.append((f"{path.parent.name}/{path.name}", iou, mad, niou, nmad))
        print(f"## {name}: INT8 ({int8_cls.name}) vs FP32, {len(rows)} photos\n")
        print("| photo | IoU | mean abs Δα | FP32 vs FP32 ±1: IoU | its mean abs Δα |")
        print("|---|--:|--:|--:|--:|")
        for r in sorted(rows, key=lambda r: r[1]):
            print(f"| {r[0]} | {r[1]:.4f} | {r[2]:.2f} | {r[3]:.4f} | {r[4]:.2f} |")
        ious, mads = [r[1] for r in rows], [r[2] for r in rows]
        print(f"\nmin IoU {min(ious):.4f}, median {float(np.median(ious)):.4f}; max mean |Δα| {max(mads):.2f}")
        floor = [r[3] for r in rows]
        print(f"FP32 vs FP32 ±1: min IoU {min(floor):.4f}, median {float(np.median(floor)):.4f}\n")
        del fp32, int8
    return 0


if __name__ == "__main__":
    sys.exit(main())
