"""Images the tests draw themselves, plus the one shipped photo (public domain)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from .workerproc import REPO

ASTRONAUT = REPO / "samples" / "astronaut.jpg"


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def subject_scene(size: tuple[int, int] = (480, 640), seed: int = 0) -> tuple[Image.Image, np.ndarray]:
    """A figure (head + shoulders) in saturated colours on a soft, plain background.

    Returns the photo and the drawn truth mask (bool array), so a test can
    measure the model's mask against what is really subject.
    """
    w, h = size
    rng = np.random.default_rng(seed)
    # A smooth vertical gradient, like a studio backdrop, plus faint noise.
    ramp = np.linspace(200, 235, h, dtype=np.float32)[:, None, None]
    bg = np.repeat(np.repeat(ramp, w, axis=1), 3, axis=2)
    bg += rng.normal(0, 2, size=bg.shape)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")
    truth = Image.new("L", size, 0)
    d_img, d_truth = ImageDraw.Draw(img), ImageDraw.Draw(truth)
    head = (w * 0.34, h * 0.14, w * 0.66, h * 0.46)
    body = (w * 0.12, h * 0.52, w * 0.88, h * 1.2)
    neck = (w * 0.43, h * 0.40, w * 0.57, h * 0.56)
    for shape, colour in ((body, (40, 60, 160)), (neck, (205, 150, 120)), (head, (215, 160, 125))):
        fn = d_img.ellipse if shape is not neck else d_img.rectangle
        fn(shape, fill=colour)
        (d_truth.ellipse if shape is not neck else d_truth.rectangle)(shape, fill=255)
    # Hair and eyes: texture inside the subject, as a photo has.
    d_img.chord((w * 0.34, h * 0.12, w * 0.66, h * 0.34), 180, 360, fill=(60, 40, 25))
    d_truth.chord((w * 0.34, h * 0.12, w * 0.66, h * 0.34), 180, 360, fill=255)
    for ex in (0.44, 0.56):
        d_img.ellipse((w * ex - 6, h * 0.30 - 4, w * ex + 6, h * 0.30 + 4), fill=(30, 30, 30))
    return img, np.asarray(truth) > 127


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
