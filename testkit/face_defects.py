"""Defects an ID office rejects, drawn on a face (tests, bench/portraits_eval.py).

Each function takes the photo and the two eye centres (image pixels, the person's right eye first,
i.e. the one on the image's left) and returns a new RGB image. Drawn, not photographed: the tests use them
on samples/astronaut.jpg (public domain), the bench on the portraits it reads by hand.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Point = tuple[float, float]


def _geometry(right: Point, left: Point) -> tuple[float, float]:
    """Distance between the eyes and the eye line's angle (degrees)."""
    return math.dist(right, left), math.degrees(math.atan2(left[1] - right[1], left[0] - right[0]))


def _ellipse(size: tuple[int, int], centre: Point, ax: float, ay: float, angle: float, blur: float) -> np.ndarray:
    """A soft filled ellipse (0-1) turned by `angle` degrees."""
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    pts = []
    for i in range(64):
        a = 2 * math.pi * i / 64
        x, y = ax * math.cos(a), ay * math.sin(a)
        pts.append((centre[0] + x * c - y * s, centre[1] + x * s + y * c))
    m = Image.new("L", size, 0)
    ImageDraw.Draw(m).polygon(pts, fill=255)
    if blur > 0:
        m = m.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(m, dtype=np.float32) / 255


def sunglasses(img: Image.Image, right: Point, left: Point, transmission: float = 0.12) -> Image.Image:
    """Dark lenses over both eyes (letting `transmission` of the light through) and a bridge between them."""
    ied, angle = _geometry(right, left)
    cover = np.maximum(*(_ellipse(img.size, e, 0.34 * ied, 0.25 * ied, angle, 0.02 * ied) for e in (right, left)))
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    lens = arr * transmission + np.array([12, 12, 16], np.float32)
    out = Image.fromarray(np.clip(arr + (lens - arr) * cover[..., None], 0, 255).astype(np.uint8))
    ux, uy = (left[0] - right[0]) / ied, (left[1] - right[1]) / ied
    a = (right[0] + 0.3 * ied * ux, right[1] + 0.3 * ied * uy - 0.1 * ied)
    b = (left[0] - 0.3 * ied * ux, left[1] - 0.3 * ied * uy - 0.1 * ied)
    ImageDraw.Draw(out).line([a, b], fill=(20, 20, 20), width=max(1, round(0.04 * ied)))
    return out


def eyes_shut(img: Image.Image, right: Point, left: Point) -> Image.Image:
    """Each eye painted over with the skin just below it, a thin dark lash line across."""
    ied, angle = _geometry(right, left)
    out = img.convert("RGB")
    arr = np.asarray(out, dtype=np.float32)
    draw = ImageDraw.Draw(out)
    for x, y in (right, left):
        below = arr[round(y + 0.25 * ied) : round(y + 0.35 * ied), round(x - 0.1 * ied) : round(x + 0.1 * ied)]
        skin = tuple(int(v) for v in np.median(below.reshape(-1, 3), axis=0))
        lid = _ellipse(out.size, (x, y), 0.26 * ied, 0.13 * ied, angle, 0.02 * ied)
        out.paste(Image.new("RGB", out.size, skin), (0, 0), Image.fromarray((lid * 255).astype(np.uint8)))
        draw = ImageDraw.Draw(out)
        t = math.radians(angle)
        dx, dy = 0.22 * ied * math.cos(t), 0.22 * ied * math.sin(t)
        draw.line([(x - dx, y - dy + 0.02 * ied), (x + dx, y + dy + 0.02 * ied)], fill=(40, 30, 30), width=1)
    return out


def side_shadow(img: Image.Image, right: Point, left: Point, factor: float = 0.3) -> Image.Image:
    """The image-left half of the face darkened to `factor` of its light, the edge softened down the nose."""
    ied, _ = _geometry(right, left)
    cx = (right[0] + left[0]) / 2
    xs = np.arange(img.width, dtype=np.float32)
    gain = factor + (1 - factor) * np.clip((xs - (cx - 0.1 * ied)) / (0.2 * ied), 0, 1)
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) * gain[None, :, None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def blurred(img: Image.Image, right: Point, left: Point, sigma: float = 0.04) -> Image.Image:
    """Out of focus: a Gaussian blur of `sigma` eye distances."""
    return img.convert("RGB").filter(ImageFilter.GaussianBlur(sigma * math.dist(right, left)))


def gain(img: Image.Image, factor: float) -> Image.Image:
    """Every channel times `factor` (0.35: underexposed; 1.6: blown out on a light face)."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) * factor
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def cast(img: Image.Image, rgb: tuple[float, float, float] = (0.75, 1.15, 0.75)) -> Image.Image:
    """A colour cast: each channel times its factor (the default: a strong green)."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) * np.asarray(rgb, np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def turned(img: Image.Image, right: Point, left: Point, amount: float = 0.35) -> Image.Image:
    """The head turned (a 2-D stand-in for yaw): every column left of the eyes' midpoint stretched by
    1 + `amount`, every column right of it squeezed by 1 - `amount`, so one half of the face narrows as a
    turned head's far half does (on the astronaut at 2x, 0.35 reads about 17 degrees of yaw)."""
    cx = (right[0] + left[0]) / 2
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    d = np.arange(arr.shape[1], dtype=np.float64) - cx
    src = np.clip(np.where(d < 0, cx + d / (1 + amount), cx + d / (1 - amount)), 0, arr.shape[1] - 1)
    x0 = np.floor(src).astype(np.intp)
    x1 = np.minimum(x0 + 1, arr.shape[1] - 1)
    t = (src - x0)[None, :, None].astype(np.float32)
    return Image.fromarray((arr[:, x0] * (1 - t) + arr[:, x1] * t).round().astype(np.uint8))
