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
    """Each eye closed as a real lid closes it: the opening covered with the skin from just below the eye (its
    texture, not a flat colour), shaded a little darker towards the lid's edge; the edge a soft dark lash line
    that sags between the corners (a closed lid's margin curves down), dense short lashes along it."""
    ied, angle = _geometry(right, left)
    src = img.convert("RGB")
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    # The skin 0.3 IED further down the face, moved up over the eye (PIL's affine reads output (x, y) at input
    # (x + dx, y + dy)).
    dx, dy = -0.3 * ied * s, 0.3 * ied * c
    skin = np.asarray(src.transform(src.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy)), dtype=np.float32)
    arr = np.asarray(src, dtype=np.float32)
    ys = np.arange(src.size[1], dtype=np.float32)[:, None]
    xs = np.arange(src.size[0], dtype=np.float32)[None, :]
    lashes = Image.new("L", src.size, 0)
    draw = ImageDraw.Draw(lashes)

    def at(e: Point, u: float, v: float) -> Point:  # eye-aligned offsets (eye distances) -> image pixels
        return (e[0] + ied * (u * c - v * s), e[1] + ied * (u * s + v * c))

    for e in (right, left):
        lid = _ellipse(src.size, at(e, 0, -0.01), 0.27 * ied, 0.14 * ied, angle, 0.03 * ied)
        down = (-(xs - e[0]) * s + (ys - e[1]) * c) / ied  # distance down the face from the eye's centre
        shade = 1 - 0.18 * np.clip(1 - np.abs(down - 0.04) / 0.12, 0, 1)  # the lid rounds over the eye
        arr = arr + (skin * shade[..., None] - arr) * lid[..., None]
        # The lash line: corners 0.21 IED either side, level with the eye's centre; 0.04 IED lower at the middle.
        edge = [at(e, u, 0.03 + 0.04 * (1 - (u / 0.21) ** 2)) for u in np.linspace(-0.21, 0.21, 29)]
        draw.line(edge, fill=230, width=max(1, round(0.022 * ied)), joint="curve")
        for i, (px, py) in enumerate(edge[2:-2], start=2):
            u = -0.21 + 0.42 * i / 28
            tip = at(e, u * 1.08, 0.03 + 0.04 * (1 - (u / 0.21) ** 2) + 0.03)
            draw.line([(px, py), tip], fill=150, width=1)
    dark = np.asarray(lashes.filter(ImageFilter.GaussianBlur(0.006 * ied)), dtype=np.float32)[..., None] / 255
    arr = arr + (np.array([40, 30, 26], np.float32) - arr) * dark
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


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
