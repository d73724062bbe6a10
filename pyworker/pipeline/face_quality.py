"""What an ID office looks at on the face itself: eyes, mouth, pose, light, sharpness, colour.

Pure functions of the SOURCE photo (the decoded working image, before the
background is replaced and before straightening, which change light and pose)
and the chosen Face. Each returns one check of meta.compliance in the shape
compliance.py uses (name, value, accepted, passed, note); the note of a failing
check tells the person what to do. A value that cannot be measured (no mesh,
a face too small to judge) is None with a note: it never passes, so `strict`
refuses it. Thresholds and where they come from: docs/id-photos.md#face-checks.

Everything is measured on a small face-aligned copy (`_Norm`): the region
around the face, turned so the eyes are level and scaled so they are NORM_IED
pixels apart. That makes the figures independent of the photo's resolution and
of roll, and keeps the cost to a few milliseconds (a ~300 x 330 px crop
whatever the photo's size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from .face import Face

Point = tuple[float, float]

# The face-aligned copy: eyes NORM_IED px apart (ICAO 9303's recommended least
# inter-eye distance for a printed ID photo is 90 px), a canvas from -1.5 to
# +1.5 IED left and right of the eye midpoint, -1.1 above it to +2.2 below.
NORM_IED = 90
NORM_BOX = (-1.5, -1.1, 1.5, 2.2)
# Below this many pixels between the eyes in the source there is too little
# face to judge light, sharpness or the eyes (ISO/IEC 19794-5's least IED for a
# token image is 60 px; half of it is a thumbnail): those checks are unknown.
MIN_IED = 30.0


def _check(name: str, value: Any, accepted: Any, passed: bool, note: str | None = None) -> dict[str, Any]:
    check: dict[str, Any] = {"name": name, "value": value, "accepted": accepted, "passed": bool(passed)}
    if note:
        check["note"] = note
    return check


def _unknown(name: str, accepted: Any, why: str) -> dict[str, Any]:
    return _check(name, None, accepted, False, f"not measured: {why}")


# ---- the face-aligned copy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Norm:
    """The face turned level and scaled: `rgb` float32 H x W x 3 (sRGB 0-255); `to_px` maps face units to pixels.

    Face units: origin at the eye midpoint, x to the image's right, y down, 1 = the distance between the eyes.
    """

    rgb: np.ndarray
    luma: np.ndarray  # sRGB luma Y' (Rec. 601 weights), 0-255
    linear: np.ndarray  # linear-light luminance Y (Rec. 709 weights on linearised sRGB), 0-1
    mouth: Point  # the mouth centre in face units
    source_ied: float  # pixels between the eyes in the source photo

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice]:
        """Row and column slices of a rectangle given in face units."""
        ox, oy = -NORM_BOX[0] * NORM_IED, -NORM_BOX[1] * NORM_IED
        h, w = self.luma.shape
        r0, r1 = max(0, round(oy + y0 * NORM_IED)), min(h, round(oy + y1 * NORM_IED))
        c0, c1 = max(0, round(ox + x0 * NORM_IED)), min(w, round(ox + x1 * NORM_IED))
        return slice(r0, max(r0 + 1, r1)), slice(c0, max(c0 + 1, c1))


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    v = v / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def normalise(rgb: Image.Image, face: Face) -> _Norm:
    """The face-aligned copy of `rgb` around `face` (bilinear; cost independent of the photo's size)."""
    (rx, ry), (lx, ly) = face.right_eye, face.left_eye
    ied = max(1e-3, math.dist(face.right_eye, face.left_eye))
    cx, cy = (rx + lx) / 2, (ry + ly) / 2
    ux, uy = (lx - rx) / ied, (ly - ry) / ied  # unit vector along the eye line (image right)
    vx, vy = -uy, ux  # perpendicular, pointing down the face
    k = ied / NORM_IED  # source pixels per normalised pixel
    x0, y0 = NORM_BOX[0] * NORM_IED, NORM_BOX[1] * NORM_IED
    w, h = round((NORM_BOX[2] - NORM_BOX[0]) * NORM_IED), round((NORM_BOX[3] - NORM_BOX[1]) * NORM_IED)
    # PIL's affine maps each output pixel (u, v) to the input (a u + b v + c, d u + e v + f).
    a, b = ux * k, vx * k
    d, e = uy * k, vy * k
    c = cx + a * x0 + b * y0
    f = cy + d * x0 + e * y0
    src = rgb if rgb.mode == "RGB" else rgb.convert("RGB")
    if k > 2:  # a large face: reduce first so the bilinear sample does not alias (and the transform reads less)
        n = int(k // 2)
        src = src.reduce(n)
        a, b, c, d, e, f = a / n, b / n, (c + 0.5) / n - 0.5, d / n, e / n, (f + 0.5) / n - 0.5
    out = src.transform((w, h), Image.Transform.AFFINE, (a, b, c, d, e, f), resample=Image.Resampling.BILINEAR)
    arr = np.asarray(out, dtype=np.float32)
    luma = arr @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    linear = _srgb_to_linear(arr) @ np.asarray([0.2126, 0.7152, 0.0722], dtype=np.float32)
    mx, my = face.mouth_mid
    mouth = (((mx - cx) * ux + (my - cy) * uy) / ied, ((mx - cx) * vx + (my - cy) * vy) / ied)
    return _Norm(arr, luma, linear.astype(np.float32), mouth, ied)


def _gauss(a: np.ndarray, sigma: float) -> np.ndarray:
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32)


# ---- thresholds (docs/id-photos.md#face-checks gives each one's source) ---------------------------------

# eyes_visible: median luma of each eye's surroundings (±0.28 IED across, -0.15..+0.2 IED down) over the
# cheeks' median; the brighter of the two eyes counts (dark lenses darken both). Measured: 31 real faces
# 0.37-1.12; drawn dark lenses (12 % transmission) 0.11-0.24 on the same faces, a real pair 0.19.
MIN_EYE_BRIGHTNESS = 0.30
# lighting: median luma of the darker half of the face (beside the nose, eye line to mouth) over the
# brighter half's. Measured: 29 faces without side light 0.65-1.0, the hard side light of one 0.29;
# one half darkened to 30 % reads 0.19-0.49.
MIN_LIGHT_BALANCE = 0.55
# exposure: the face's mean sRGB luma (0-1) within LUMINANCE_RANGE (OFIQ's Luminance scores 0.2-0.8 as
# good); underexposed when even its highlights (99th percentile of luma) stay below MIN_HIGHLIGHT, whatever
# the skin's tone; overexposed when more than MAX_CLIPPED of it is blown out (luma >= 250). Measured on 31
# real faces: mean 0.34-0.78, highlights 136-242, blown out at most 0.1 %; the same x0.35: highlights
# 47-84; x1.6: 5-84 % blown out on light faces, mean up to 0.96.
LUMINANCE_RANGE = (0.15, 0.86)
MIN_HIGHLIGHT = 110
MAX_CLIPPED = 0.05
# sharpness: mean |luma - Gaussian(1 px)| over the face at NORM_IED, in % of the face's mean luma (so a
# dark face or a shadowed half is not "blurred"): the detail a print at ICAO's least resolution shows.
# Measured: 25 sharp faces 0.93-6.4; the same blurred by 0.025 IED 0.07-0.53; low-resolution faces
# upscaled to NORM_IED 0.11-0.70 (a few reach 1.2).
MIN_SHARPNESS = 0.8
# colour: OFIQ's NaturalColour, the distance of the cheeks' mean CIELAB (a*, b*) from the box
# a* 5-25, b* 5-35 (0 inside it). Measured: 31 real faces 0-3.1; a green cast (R, B x0.85, G x1.1)
# 4-16 on most, a blue one (B x1.2) up to 24.
MAX_COLOUR_DISTANCE = 6.0
NATURAL_A = (5.0, 25.0)
NATURAL_B = (5.0, 35.0)


def eyes_visible(n: _Norm, cheek: float) -> dict[str, Any]:
    accepted = [MIN_EYE_BRIGHTNESS, None]
    eyes = [float(np.median(n.luma[n.box(x - 0.28, -0.15, x + 0.28, 0.2)])) / cheek for x in (-0.5, 0.5)]
    value = round(max(eyes), 3)
    ok = value >= MIN_EYE_BRIGHTNESS
    note = None if ok else "the eyes are hidden by dark lenses or shadow: take off the sunglasses, show both eyes"
    return _check("eyes_visible", value, accepted, ok, note)


def lighting(n: _Norm) -> dict[str, Any]:
    y1 = max(0.3, n.mouth[1])
    right = float(np.median(n.luma[n.box(-0.85, 0.15, -0.25, y1)]))
    left = float(np.median(n.luma[n.box(0.25, 0.15, 0.85, y1)]))
    value = round(min(right, left) / max(1.0, right, left), 3)
    ok = value >= MIN_LIGHT_BALANCE
    side = "left" if right < left else "right"  # the image's side that is darker
    note = None if ok else f"the face is darker on the photo's {side}: light both sides of the face evenly"
    return _check("lighting", value, [MIN_LIGHT_BALANCE, 1.0], ok, note)


def exposure(n: _Norm) -> dict[str, Any]:
    face = n.box(-0.75, -0.35, 0.75, n.mouth[1] + 0.25)
    luma = n.luma[face]
    value = round(float(luma.mean()) / 255, 3)
    clipped = float((luma >= 250).mean())
    highlight = float(np.percentile(luma, 99))
    lo, hi = LUMINANCE_RANGE
    note = None
    if clipped > MAX_CLIPPED:
        note = f"{clipped:.0%} of the face is blown out to white: less light or a lower exposure"
    elif value < lo or highlight < MIN_HIGHLIGHT:
        note = f"the face is too dark (its brightest parts reach {highlight:.0f} of 255): more light on the face"
    elif value > hi:
        note = "the face is too bright: less light or a lower exposure"
    return _check("exposure", value, list(LUMINANCE_RANGE), note is None, note)


def sharpness(n: _Norm) -> dict[str, Any]:
    luma = np.round(n.luma)
    face = n.box(-0.75, -0.35, 0.75, n.mouth[1] + 0.25)
    detail = np.abs(luma - _gauss(luma, 1.0))[face]
    value = round(100 * float(detail.mean()) / max(1.0, float(luma[face].mean())), 2)
    ok = value >= MIN_SHARPNESS
    note = None
    if not ok:
        note = "the face is blurred or too small in the photo: a sharp photo, taken closer or at a higher resolution"
    return _check("sharpness", value, [MIN_SHARPNESS, None], ok, note)


def _lab_ab(rgb: np.ndarray) -> tuple[float, float]:
    """CIELAB a*, b* of one mean sRGB colour (D50, as OFIQ's NaturalColour converts it)."""
    r, g, b = (float(v) for v in _srgb_to_linear(rgb.astype(np.float64)))
    x = (r * 0.43605 + g * 0.38508 + b * 0.14309) / 0.964221
    y = r * 0.22249 + g * 0.71689 + b * 0.06062
    z = (r * 0.01393 + g * 0.09710 + b * 0.71419) / 0.825211

    def f(t: float) -> float:
        return math.copysign(abs(t) ** (1 / 3), t) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    return 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def colour(n: _Norm, cheeks: np.ndarray) -> dict[str, Any]:
    a, b = _lab_ab(cheeks.reshape(-1, 3).mean(axis=0))
    da = max(0.0, NATURAL_A[0] - a, a - NATURAL_A[1])
    db = max(0.0, NATURAL_B[0] - b, b - NATURAL_B[1])
    value = round(math.hypot(da, db), 2)
    ok = value <= MAX_COLOUR_DISTANCE
    note = None
    if not ok:
        tint = ("green" if a < NATURAL_A[0] else "red") if da >= db else ("blue" if b < NATURAL_B[0] else "yellow")
        note = f"the skin has a {tint} cast (a* {a:.0f}, b* {b:.0f}): take it in daylight or white light, no filter"
    return _check("colour", value, [0, MAX_COLOUR_DISTANCE], ok, note)


# ---- the checks a preset asks for -------------------------------------------------------------------------

# Photo-quality checks every ID framing gets; a preset's standard adds the face's pose and expression.
APPEARANCE = ("eyes_visible", "lighting", "exposure", "sharpness", "colour")
ACCEPTED = {
    "eyes_visible": [MIN_EYE_BRIGHTNESS, None],
    "lighting": [MIN_LIGHT_BALANCE, 1.0],
    "exposure": list(LUMINANCE_RANGE),
    "sharpness": [MIN_SHARPNESS, None],
    "colour": [0, MAX_COLOUR_DISTANCE],
}


def assess(rgb: Image.Image, face: Face | None) -> list[dict[str, Any]]:
    """The face checks of meta.compliance, measured on the source photo `rgb` around `face` (its pixels).

    Unknown (value None, failed) for every check when there is no face or it is too small to judge.
    """
    if face is None:
        return [_unknown(name, ACCEPTED[name], "no face") for name in APPEARANCE]
    if face.eye_distance < MIN_IED:
        why = f"the face is too small ({face.eye_distance:.0f} px between the eyes, at least {MIN_IED:.0f})"
        return [_unknown(name, ACCEPTED[name], why) for name in APPEARANCE]
    n = normalise(rgb, face)
    y = n.mouth[1] / 2  # OFIQ's cheek zones: 0.3 IED squares, half-way from the eyes to the mouth, outside each eye
    zones = (n.box(-0.8, y, -0.5, y + 0.3), n.box(0.5, y, 0.8, y + 0.3))
    cheek = max(1.0, float(np.median(np.concatenate([n.luma[z].ravel() for z in zones]))))
    cheeks = np.concatenate([n.rgb[z].reshape(-1, 3) for z in zones])
    return [eyes_visible(n, cheek), lighting(n), exposure(n), sharpness(n), colour(n, cheeks)]
