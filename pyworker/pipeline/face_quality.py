"""What an ID office looks at on the face itself: eyes, mouth, pose, light, sharpness, colour.

Pure functions of the SOURCE photo (the decoded working image, before the
background is replaced and before straightening, which change light and pose)
and the chosen Face. Each returns one check of meta.compliance in the shape
compliance.py uses (name, value, accepted, passed, note); the note of a failing
check tells the person what to do. A value that cannot be measured (no mesh,
a face too small to judge) is None with a note: it never passes, so `strict`
refuses it. Thresholds and where they come from: docs/id-photos.md#face-checks.

Everything but the eyes' opening is measured on a small face-aligned copy (`_Norm`): the region
around the face, turned so the eyes are level and scaled so they are NORM_IED
pixels apart. That makes the figures independent of the photo's resolution and
of roll, and keeps the cost to a few milliseconds (a ~300 x 330 px crop
whatever the photo's size). The eyes' opening is read from MediaPipe Iris, run on a 64x64 crop of
each eye (face.eye_points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from . import face as face_detector
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
# The head's pose is read from the mesh's geometry alone, which holds on smaller faces: on the calibration
# portraits heads of 21 and 23 px between the eyes turned by about 25-30 degrees read 22.5 and 30.3 degrees
# of yaw. Its size is the larger of the eye distance and the eyes-to-mouth distance, which a turn does not
# shrink (a profile's eyes are a few pixels apart on a large face). Below MIN_POSE_IED yaw and pitch are
# unknown too.
MIN_POSE_IED = 20.0
POSE_CHECKS = ("yaw", "pitch")


def pose_size(face: Face) -> float:
    """Pixels: the larger of the eye distance and the eyes-to-mouth distance (a turned head keeps the latter)."""
    return max(face.eye_distance, math.dist(face.eyes_mid, face.mouth_mid))


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
    frame: tuple[float, float, float, float]  # eye midpoint (x, y) and the eye line's unit vector, source pixels

    def to_norm(self, pts: np.ndarray) -> np.ndarray:
        """Source pixels (N x 2) -> pixels of the aligned copy."""
        cx, cy, ux, uy = self.frame
        dx, dy = pts[:, 0] - cx, pts[:, 1] - cy
        k = NORM_IED / self.source_ied
        u, v = (dx * ux + dy * uy) * k, (-dx * uy + dy * ux) * k
        return np.stack([u - NORM_BOX[0] * NORM_IED, v - NORM_BOX[1] * NORM_IED], axis=1)

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
    return _Norm(arr, luma, linear.astype(np.float32), mouth, ied, (cx, cy, ux, uy))


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


# ---- from the face mesh (MediaPipe's 468 points: face.py) ---------------------------------------------------

# Each eye's 16-point contour, from the outer corner along the lower lid and back along the upper lid (the
# mouth's checks measure the eye distance between their centres). The person's right eye first.
EYE_CONTOURS = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
)
INNER_LIPS = ((82, 87), (13, 14), (312, 317))  # upper and lower inner lip, left of centre, centre, right
MOUTH_CORNERS = (61, 291)
# Head pose: a weighted rigid fit of these mesh points to the same points of MediaPipe's canonical face
# model (canonical_face_model, Apache-2.0: npm @mediapipe/face_mesh@0.4.1657299874,
# geometry_pipeline_metadata_landmarks.binarypb, md5 42d2c39c5a6211c77b0e6d05801117a1; x right as seen, y
# up, z towards the camera, cm), with the weights MediaPipe's own Procrustes basis gives them. Rigid
# points only (nose, eye corners, cheeks, jaw), none that moves with the mouth or the lids.
POSE_POINTS = {  # mesh index: (x, y, z, weight)
    4: (0.0, -0.463, 7.587, 0.071),
    6: (0.0, 2.473, 5.789, 0.032),
    33: (-4.446, 2.664, 3.173, 0.059),
    133: (-1.856, 2.585, 3.758, 0.053),
    263: (4.446, 2.664, 3.173, 0.059),
    362: (1.856, 2.585, 3.758, 0.053),
    129: (-1.786, -0.978, 4.850, 0.121),
    358: (1.786, -0.978, 4.850, 0.121),
    136: (-5.085, -7.179, 0.715, 0.067),
    365: (5.085, -7.179, 0.715, 0.067),
    205: (-3.833, -1.537, 4.138, 0.047),
    425: (3.833, -1.537, 4.138, 0.047),
    198: (-1.247, 0.230, 5.681, 0.025),
    420: (1.247, 0.230, 5.681, 0.025),
}
_POSE_IDX = np.asarray(list(POSE_POINTS), dtype=np.intp)
_POSE_XYZ = np.asarray([v[:3] for v in POSE_POINTS.values()], dtype=np.float64)
_POSE_W = np.asarray([v[3] for v in POSE_POINTS.values()], dtype=np.float64) / sum(v[3] for v in POSE_POINTS.values())

# eyes_open: each eye's lid opening, the mean of the three middle gaps between upper and lower lid over the
# eye's width (corner to corner), read from MediaPipe Iris (face.eye_points: a 64x64 crop per eye), whose lids
# meet on a closed eye; the narrower eye counts. The 468-point mesh keeps its lids 0.17-0.26 of the width apart
# on real closed eyes (as far apart as on some open ones) and an iris-share measure inside its contour reads
# lashes as iris, so neither is used. Measured (bench/face_checks_eval.py; docs/id-photos.md#face-checks):
# labelled open eyes 0.207-0.385 (calibration half), 0.220-0.334 (held out); real closed or shut eyes
# 0.094-0.141; eyes painted shut (testkit eyes_shut, the mesh run again) below 0.17 on 28 of 30 faces (two
# behind glasses frames 0.194, 0.198). OFIQ's EyesOpen halves its score at a lid gap of 0.02 eye-to-chin
# distances, about 0.1 of an eye's width; 0.17 is 0.8 of the narrowest open eye of the calibration half.
MIN_EYE_OPENING = 0.17
# Beyond this yaw the far eye is behind the nose: whether both eyes are open cannot be seen, eyes_open is
# unknown. Open eyes turned by up to 40 degrees read 0.29-0.38; a profile at 59 degrees with its one visible
# eye closed read 0.29 (the far eye's crop holds no eye). Set after that held-out photo was seen (the docs say so).
MAX_EYES_YAW = 45.0
# Yaw and pitch: ISO/IEC 19794-5 asks for +-5 degrees; the fit scatters on faces that look frontal by eye
# (calibration half: yaw -5.4 to +5.0 on 9), so +-8 keeps them and fails the turned heads (22.5 and 30.3).
# Pitch reads +7 on a face level with the camera (the median of the calibration faces: the canonical
# model's zero is not the ID photo's); what is reported is the pitch minus that, accepted within +-15
# (those faces spread from -20.4 to +4.7 around it: camera height, head shape; one of 12 fails).
MAX_YAW = 8.0
PITCH_ZERO = 7.0
MAX_PITCH = 15.0


@dataclass(frozen=True)
class FaceRules:
    """What a preset's standard asks of the face beyond the photo's quality."""

    pose: bool  # yaw and pitch checked
    max_mouth_gap: float | None  # inner-lip gap over mouth width; None: the mouth is not checked
    max_smile: float | None  # mouth width over eye distance + 2 x corner lift; None: not checked


# passport-35x45 (UK HMPO, ICAO 9303): "neutral expression and mouth closed". Measured on the calibration
# half: mouth gap, 9 closed mouths 0.004-0.047, 4 open ones 0.098-0.258; smile score, neutral faces and
# slight closed-mouth smiles 0.69-1.10, broad smiles 1.28-1.43: each limit about half-way.
# us-2x2 (US Department of State): "a neutral facial expression or a natural smile, with both eyes open":
# a smile with teeth passes, a laugh (mouth wide open) or a grin does not.
RULES: dict[str, FaceRules] = {
    "passport-35x45": FaceRules(pose=True, max_mouth_gap=0.08, max_smile=1.20),
    "us-2x2": FaceRules(pose=True, max_mouth_gap=0.30, max_smile=1.45),
}
# avatar and crop: "face" (no standard): the photo's quality and open eyes only.
HOUSE_RULES = FaceRules(pose=False, max_mouth_gap=None, max_smile=None)


def _dist(pts: np.ndarray, a: int, b: int) -> float:
    return float(np.hypot(*(pts[a] - pts[b])))


def eye_opening(contour: np.ndarray) -> float:
    """Lid gap over eye width of one eye's 16-point outline (corner 0, lower lid 1-7, corner 8, upper lid 9-15)."""
    width = max(1e-3, _dist(contour, 0, 8))
    return sum(_dist(contour, up, low) for up, low in ((11, 3), (12, 4), (13, 5))) / 3 / width


def eyes_open(eyes: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """`eyes`: face.eye_points, the image's left eye first."""
    openings = [eye_opening(contour) for contour, _ in eyes]
    value = round(min(openings), 3)
    ok = value >= MIN_EYE_OPENING
    note = None
    if not ok:
        side = "left" if openings[0] <= openings[1] else "right"
        note = (
            f"the eye on the photo's {side} is closed or nearly closed (lids {value:.2f} of its width apart, "
            f"at least {MIN_EYE_OPENING}): open both eyes and look at the camera"
        )
    return _check("eyes_open", value, [MIN_EYE_OPENING, None], ok, note)


def _mouth_frame(mesh: np.ndarray) -> tuple[float, float, float]:
    """Eye distance (contour centres), mouth width, and the mouth corners' lift over the lips' centre (y up)."""
    eyes = [mesh[list(c)].mean(axis=0) for c in EYE_CONTOURS]
    ied = max(1e-3, float(np.hypot(*(eyes[1] - eyes[0]))))
    ux, uy = (eyes[1] - eyes[0]) / ied
    width = max(1e-3, _dist(mesh, *MOUTH_CORNERS))
    centre = (mesh[13] + mesh[14]) / 2
    corners = (mesh[MOUTH_CORNERS[0]] + mesh[MOUTH_CORNERS[1]]) / 2
    d = corners - centre
    lift = -float(-d[0] * uy + d[1] * ux)  # along the face's downward axis, negated: corners above are positive
    return ied, width, lift


def mouth_closed(mesh: np.ndarray, rules: FaceRules) -> dict[str, Any]:
    assert rules.max_mouth_gap is not None
    _, width, _ = _mouth_frame(mesh)
    gap = max(_dist(mesh, a, b) for a, b in INNER_LIPS) / width
    value = round(gap, 3)
    ok = value <= rules.max_mouth_gap
    return _check("mouth_closed", value, [0, rules.max_mouth_gap], ok, None if ok else "close your mouth")


def expression(mesh: np.ndarray, rules: FaceRules) -> dict[str, Any]:
    assert rules.max_smile is not None
    ied, width, lift = _mouth_frame(mesh)
    value = round(width / ied + 2 * lift / width, 3)
    ok = value <= rules.max_smile
    note = None if ok else "a broad smile: keep a neutral expression, the mouth relaxed"
    return _check("expression", value, [0, rules.max_smile], ok, note)


def head_pose(mesh: np.ndarray) -> tuple[float, float]:
    """Yaw (positive: the face turned towards the image's right) and pitch (positive: chin down), degrees.

    A scaled-orthographic fit: the 2 x 3 linear map that best takes the canonical points to the mesh's
    (weighted least squares), made a rotation by its nearest orthonormal rows; the third row is their cross.
    """
    q = mesh[_POSE_IDX].astype(np.float64) * np.asarray([1.0, -1.0])  # y up, as the canonical model
    w = _POSE_W[:, None]
    p = _POSE_XYZ - (w * _POSE_XYZ).sum(axis=0)
    q = q - (w * q).sum(axis=0)
    m, *_ = np.linalg.lstsq(p * np.sqrt(w), q * np.sqrt(w), rcond=None)
    u, _, vt = np.linalg.svd(m.T, full_matrices=False)
    r12 = u @ vt
    r = np.vstack([r12, np.cross(r12[0], r12[1])])
    yaw = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -r[1, 2]))))
    return yaw, pitch


def pose_checks(mesh: np.ndarray) -> list[dict[str, Any]]:
    yaw, pitch = head_pose(mesh)
    pitch -= PITCH_ZERO
    side = "right" if yaw > 0 else "left"
    yaw_note = None if abs(yaw) <= MAX_YAW else f"the head is turned to the photo's {side}: face the camera"
    way = "down" if pitch > 0 else "up"
    pitch_note = None if abs(pitch) <= MAX_PITCH else f"the chin is {way}: face the camera with the head level"
    return [
        _check("yaw", round(yaw, 1), [-MAX_YAW, MAX_YAW], yaw_note is None, yaw_note),
        _check("pitch", round(pitch, 1), [-MAX_PITCH, MAX_PITCH], pitch_note is None, pitch_note),
    ]


# ---- the checks a preset asks for -------------------------------------------------------------------------

# Photo-quality checks every ID framing gets; a preset's standard adds the mouth, the expression and the pose.
APPEARANCE = ("eyes_visible", "lighting", "exposure", "sharpness", "colour")
ACCEPTED: dict[str, Any] = {
    "eyes_open": [MIN_EYE_OPENING, None],
    "eyes_visible": [MIN_EYE_BRIGHTNESS, None],
    "yaw": [-MAX_YAW, MAX_YAW],
    "pitch": [-MAX_PITCH, MAX_PITCH],
    "lighting": [MIN_LIGHT_BALANCE, 1.0],
    "exposure": list(LUMINANCE_RANGE),
    "sharpness": [MIN_SHARPNESS, None],
    "colour": [0, MAX_COLOUR_DISTANCE],
}
MESH_CHECKS = ("eyes_open", "mouth_closed", "expression", "yaw", "pitch")
ORDER = ("eyes_open", "eyes_visible", "mouth_closed", "expression", "yaw", "pitch", *APPEARANCE[1:])


def rules_for(preset: str) -> FaceRules:
    return RULES.get(preset, HOUSE_RULES)


def names(preset: str) -> list[str]:
    """The face checks of `preset` (a Preset's name, "face" for crop: "face"), in report order."""
    r = rules_for(preset)
    skip = set()
    if r.max_mouth_gap is None:
        skip.add("mouth_closed")
    if r.max_smile is None:
        skip.add("expression")
    if not r.pose:
        skip.update(("yaw", "pitch"))
    return [n for n in ORDER if n not in skip]


def _accepted(name: str, r: FaceRules) -> Any:
    if name == "mouth_closed":
        return [0, r.max_mouth_gap]
    if name == "expression":
        return [0, r.max_smile]
    return ACCEPTED[name]


def with_mesh(rgb: Image.Image, face: Face | None) -> Face | None:
    """`face` with its mesh measured on `rgb` (face.refine), unless it has one or there is none to measure."""
    if face is None or getattr(face, "mesh", None) is not None or pose_size(face) < MIN_POSE_IED:
        return face
    return face_detector.refine(rgb, face)


def assess(rgb: Image.Image, face: Face | None, preset: str = "face") -> list[dict[str, Any]]:
    """The face checks of meta.compliance for `preset`, measured on the source photo `rgb` around `face`.

    Every check is unknown (value None, failed) without a face or when it is too small to judge (yaw and
    pitch below MIN_POSE_IED of pose_size, the rest below MIN_IED between the eyes); the mesh checks are
    unknown when the face has no mesh.
    """
    r = rules_for(preset)
    wanted = names(preset)
    if face is None:
        return [_unknown(n, _accepted(n, r), "no face") for n in wanted]
    mesh = getattr(face, "mesh", None)
    if face.eye_distance < MIN_IED:

        def small(name: str) -> dict[str, Any]:
            if name in POSE_CHECKS:
                why = f"the face is too small ({pose_size(face):.0f} px, eyes to mouth, at least {MIN_POSE_IED:.0f})"
            else:
                why = f"the face is too small ({face.eye_distance:.0f} px between the eyes, at least {MIN_IED:.0f})"
            return _unknown(name, _accepted(name, r), why)

        got = {name: small(name) for name in wanted}
        if r.pose and mesh is not None and pose_size(face) >= MIN_POSE_IED:
            got.update((c["name"], c) for c in pose_checks(np.asarray(mesh, dtype=np.float64)))
        return [got[n] for n in wanted]
    n = normalise(rgb, face)
    y = n.mouth[1] / 2  # OFIQ's cheek zones: 0.3 IED squares, half-way from the eyes to the mouth, outside each eye
    zones = (n.box(-0.8, y, -0.5, y + 0.3), n.box(0.5, y, 0.8, y + 0.3))
    cheek = max(1.0, float(np.median(np.concatenate([n.luma[z].ravel() for z in zones]))))
    cheeks = np.concatenate([n.rgb[z].reshape(-1, 3) for z in zones])
    got = {c["name"]: c for c in (eyes_visible(n, cheek), lighting(n), exposure(n), sharpness(n), colour(n, cheeks))}
    if mesh is None:
        for m in MESH_CHECKS:
            got[m] = _unknown(m, _accepted(m, r), "no face mesh (the landmark model could not run on this face)")
    else:
        mesh = np.asarray(mesh, dtype=np.float64)
        yaw = head_pose(mesh)[0]
        if abs(yaw) > MAX_EYES_YAW:
            why = f"the head is turned by {abs(yaw):.0f} degrees, one eye is hidden: face the camera"
            got["eyes_open"] = _unknown("eyes_open", ACCEPTED["eyes_open"], why)
        else:
            eyes = face_detector.eye_points(rgb, face)
            got["eyes_open"] = eyes_open(eyes) if eyes else _unknown("eyes_open", ACCEPTED["eyes_open"], "no mesh")
        if r.max_mouth_gap is not None:
            got["mouth_closed"] = mouth_closed(mesh, r)
        if r.max_smile is not None:
            got["expression"] = expression(mesh, r)
        if r.pose:
            got.update((c["name"], c) for c in pose_checks(mesh))
    return [got[name] for name in wanted]
