"""Images the tests draw themselves, plus the one shipped photo (public domain)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

from .client import REPO

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


# ---- files for the bad-input corpus (tests/test_bad_inputs.py) -----------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes | None) -> bytes:
    """A PNG written byte by byte: for what Pillow won't write (16-bit RGB) or headers that lie.

    `rows` is the unfiltered scanlines, each behind its filter byte; None writes no IDAT at all.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    body = png_chunk(b"IHDR", ihdr)
    if rows is not None:
        body += png_chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + body + png_chunk(b"IEND", b"")


def png_rgb16(img: Image.Image) -> bytes:
    """An RGB image as a 48-bit PNG (each 8-bit value v stored as v * 257)."""
    arr = (np.asarray(img.convert("RGB"), dtype=np.uint16) * 257).astype(">u2")
    rows = b"".join(b"\0" + row.tobytes() for row in arr)
    return raw_png(img.width, img.height, 16, 2, rows)


# What a camera stores for each EXIF orientation (1-8), from the TIFF/EXIF spec: the
# transpose of the upright picture whose inverse a viewer applies. 6 means "rotate 90°
# clockwise to view", so the sensor's pixels are the upright picture turned 90°
# counter-clockwise (Pillow's ROTATE_90). 2, 3, 4, 5 and 7 are their own inverses.
STORED_FOR_ORIENTATION: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def with_orientation(upright: Image.Image, orientation: int, fmt: str = "JPEG", **kw) -> bytes:
    """The file a camera would write for `upright` held in `orientation`: pixels turned, tag set."""
    method = STORED_FOR_ORIENTATION[orientation]
    stored = upright if method is None else upright.transpose(method)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, fmt, exif=exif, **kw)


def marked_scene(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """subject_scene with a red square in its top-left corner: where it ends up shows any turn or flip."""
    img, _ = subject_scene(size, seed)
    w, h = size
    ImageDraw.Draw(img).rectangle((w * 0.02, h * 0.02, w * 0.2, h * 0.2), fill=(230, 20, 20))
    return img


def is_red(pixel: tuple[int, ...]) -> bool:
    r, g, b = pixel[:3]
    return r > 180 and g < 80 and b < 80


def rgb_distance(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two images' RGB channels (0-255)."""
    assert a.size == b.size, (a.size, b.size)
    diff = np.asarray(a.convert("RGB"), dtype=np.int16) - np.asarray(b.convert("RGB"), dtype=np.int16)
    return float(np.abs(diff).mean())
