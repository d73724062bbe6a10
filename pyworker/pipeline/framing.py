"""ID-photo framing: the face-centred frame of a preset (docs/id-photos.md#how-the-frame-is-found).

The steps of `frame`, given the faces found before matting (plan.py) and the mask:

1. keep the faces inside the subject's mask and take the one nearest its top,
   larger ones winning ties (a face printed on a T-shirt is inside the mask
   but low; a face on a poster behind is outside it);
2. straighten: rotate the photo and its mask about the eye midpoint so the
   eyes are level (not beyond ±MAX_ROLL_DEG), then look again to measure
   what is left;
3. measure the head: eye line from the eyes, chin from the eyes and mouth
   (CHIN_FACTOR), crown from the mask straight above the eyes;
4. scale the frame so crown-to-chin is the preset's head share, place it so
   the eyes sit on the preset's eye line, keep the preset's top margin above
   the crown, centre it on the eyes.

Without a face the frame is the subject's bounding box grown to the aspect
ratio (crop_mode "subject"), or the error no_face with `face_required`.
compliance.py then checks the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
from PIL import Image

from ..errors import WorkerError
from . import face as face_detector
from . import face_quality, placement
from .face import Face
from .mask import subject_box
from .options import RemoveOptions
from .presets import FACE_FRAMING, Preset, preset_size

Box = tuple[int, int, int, int]

# The chin is the face mesh's point 152 (the front of the chin) plus this many
# eye distances down: on 30 real portraits point 152 lies on average 0.07 eye
# distances above the chin's silhouette, the bottom edge that "crown to chin"
# means (shared/leads/chin-landmarks.md; docs/id-photos.md#how-the-frame-is-found).
CHIN_BELOW = 0.07
# Without a mesh (the face too small for it): the chin below the eye line in units
# of the eye-line-to-mouth distance, calibrated on samples/astronaut.jpg by hand
# ((164 - 101.5) / (142.5 - 101.5) = 1.52). Only a fallback: on real portraits
# the right factor is 1.51-2.05, so the report never trusts it (compliance.py).
CHIN_FACTOR = 1.52
# Crown above the eye line, in units of eye-to-chin, used only when the mask
# cannot give it (the photo cuts the head, or the mask runs into something
# behind): astronaut (101.5 - 16) / (164 - 101.5) = 1.37.
CROWN_FACTOR = 1.37
# A crown read from the mask is believed only between these multiples of
# eye-to-chin above the eyes; beyond, the mask has merged with something behind.
CROWN_PLAUSIBLE = (0.8, 2.4)
# Mask level that counts as head when scanning up for the crown: a quarter
# opacity, so soft hair ends (portrait matting) count and haze does not.
CROWN_THRESHOLD = 64
# Half-width of the column band scanned for the crown, in eye distances.
CROWN_BAND = 0.5
# Straightening: not attempted beyond this roll (a head lying down, a photo
# taken sideways: rotating it would be a guess), and not worth a resample below
# ROLL_EPSILON. A second look after rotating corrects what the first one missed.
MAX_ROLL_DEG = 30.0
# Eyes closer than this share of the face box's width: a face turned to a
# profile (frontal faces: 0.45-0.5), whose eye line is no measure of roll.
MIN_EYE_SPAN = 0.3
ROLL_EPSILON = 0.3
# A second rotation only when the first leaves more than this (each pass costs a
# rotate of the working image, ~100-200 ms at 2000 px, and one more detection).
SECOND_PASS_DEG = 1.0
STRAIGHTEN_PASSES = 2
# A face counts as the subject's when this share of its box is inside the mask.
MIN_FACE_COVERAGE = 0.5
# Weight of "near the subject's top" against "large" when ranking faces.
TOPNESS_WEIGHT = 2.0
# Room around the subject's box in the no-face framing, as a share of its longest side.
SUBJECT_MARGIN = 0.05


@dataclass(frozen=True)
class Head:
    """The head measured in the straightened working image (y down)."""

    eyes: tuple[float, float]
    chin: float
    crown: float
    crown_visible: bool  # the photo shows the top of the head (the mask reaches background above it)
    crown_source: str  # "mask" or "estimate"
    chin_source: str = "mesh"  # "mesh" (point 152) or "estimate" (CHIN_FACTOR: no mesh)


@dataclass
class Framed:
    """The result of `frame`: the (possibly straightened) images and where to crop them."""

    rgb: Image.Image
    mask: Image.Image
    alpha: Image.Image | None
    crop_box: Box
    mode: str  # "face" or "subject"
    out_size: tuple[int, int]
    framing: Preset
    face: Face | None = None  # in working coordinates, before straightening
    faces: list[Face] = field(default_factory=list)  # every detection, working coordinates
    faces_in_subject: int = 0
    face_coverage: float = 0.0
    roll_deg: float = 0.0  # applied rotation, degrees counter-clockwise
    measured_roll: float | None = None  # the eye line's roll before straightening
    residual_roll: float | None = None  # after straightening
    straightened: bool = False
    turned: bool = False  # the face is turned away (a profile): roll not measured, not straightened
    head: Head | None = None
    # The face's own checks (eyes, light, sharpness...: face_quality.py), measured on the source photo.
    face_checks: list[dict[str, Any]] = field(default_factory=list)
    cut: float = 0.0  # the person cut by the photo's edges inside the frame, share of its width (placement.py)
    cut_bottom: bool = False  # the photo's bottom edge makes that cut (else its sides)
    traded: str | None = None  # placement.Placement.traded: the eye line/crown given up to keep the body whole

    def output_point(self, point: tuple[float, float], out_size: tuple[int, int]) -> tuple[float, float]:
        """A point of the (straightened) working image in the output's pixels."""
        x0, y0, x1, y1 = self.crop_box
        return ((point[0] - x0) * out_size[0] / max(1, x1 - x0), (point[1] - y0) * out_size[1] / max(1, y1 - y0))


def _coverage(mask: Image.Image, box: Box) -> float:
    arr = np.asarray(mask.crop(box))
    return float((arr >= 128).mean()) if arr.size else 0.0


def faces_in_subject(faces: list[Face], mask: Image.Image) -> list[Face]:
    return [f for f in faces if _coverage(mask, f.box) >= MIN_FACE_COVERAGE]


def choose_face(faces: list[Face], mask: Image.Image) -> Face | None:
    """The subject's face: inside the mask, nearest the subject's top, larger first on ties."""
    inside = faces_in_subject(faces, mask)
    if not inside:
        return None
    subject = subject_box(mask) or (0, 0, *mask.size)
    top, height = subject[1], max(1, subject[3] - subject[1])
    biggest = max(f.height for f in inside)

    def score(f: Face) -> float:
        topness = min(1.0, max(0.0, (f.box[1] - top) / height))
        return f.height / biggest - TOPNESS_WEIGHT * topness

    return max(inside, key=score)


@overload
def _rotate(img: Image.Image, degrees: float, centre: tuple[float, float], fill: Any) -> Image.Image: ...
@overload
def _rotate(img: None, degrees: float, centre: tuple[float, float], fill: Any) -> None: ...
@overload
def _rotate(img: Image.Image | None, degrees: float, centre: tuple[float, float], fill: Any) -> Image.Image | None: ...
def _rotate(img: Image.Image | None, degrees: float, centre: tuple[float, float], fill: Any) -> Image.Image | None:
    if img is None:
        return None
    # Bilinear: the crop is resized with Lanczos afterwards anyway, and bicubic costs twice as much.
    return img.rotate(degrees, resample=Image.Resampling.BILINEAR, center=centre, fillcolor=fill)


def chin_of(face: Face) -> tuple[float, str]:
    """The chin's y (the bottom of the chin, crown-to-chin's end) and where it comes from: "mesh" or "estimate"."""
    if face.chin is not None:
        return face.chin[1] + CHIN_BELOW * face.eye_distance, "mesh"
    ey = face.eyes_mid[1]
    return ey + CHIN_FACTOR * max(1.0, face.mouth_mid[1] - ey), "estimate"


def scan_crown(
    mask: Image.Image, valid: Image.Image | None, eyes: tuple[float, float], eye_distance: float
) -> float | None:
    """The crown's y: scanning the mask up from the eyes in a band one eye distance wide, the row below the
    first with no head in it. None when the head runs into the image's top (or, with `valid`, out of the photo).
    """
    ex, ey = eyes
    half = max(2, round(CROWN_BAND * eye_distance))
    x0, x1 = max(0, round(ex) - half), min(mask.width, round(ex) + half)
    top = max(0, min(mask.height, round(ey)))
    if x1 <= x0 or top == 0:
        return None
    head = np.asarray(mask.crop((x0, 0, x1, top))) >= CROWN_THRESHOLD
    inside = np.asarray(valid.crop((x0, 0, x1, top))) >= 128 if valid is not None else np.ones_like(head)
    below = None  # the head's columns in the row under the one looked at
    for y in range(top - 1, -1, -1):  # up from the eyes
        row = head[y] & inside[y]
        if not row.any():
            # No head here. Where the row is outside the photo (a straightened corner) right above the
            # head, the photo cut it; elsewhere this is background: the crown is the row below.
            if below is not None and (below & ~inside[y]).any():
                return None
            return float(y + 1)
        below = row
    return None  # the head runs into the image's top


def measure_head(face: Face, mask: Image.Image, valid: Image.Image | None) -> Head:
    """Eye line, chin and crown of an upright face; `valid` marks pixels that came from the photo."""
    ex, ey = face.eyes_mid
    chin, chin_source = chin_of(face)
    eye_to_chin = chin - ey
    estimate = ey - CROWN_FACTOR * eye_to_chin
    crown = scan_crown(mask, valid, (ex, ey), face.eye_distance)
    if crown is None:  # the head runs to the photo's edge: the photo cuts the crown
        return Head((ex, ey), chin, min(estimate, 0.0), False, "estimate", chin_source)
    lo, hi = CROWN_PLAUSIBLE
    if not lo * eye_to_chin <= ey - crown <= hi * eye_to_chin:
        return Head((ex, ey), chin, estimate, True, "estimate", chin_source)
    return Head((ex, ey), chin, crown, True, "mask", chin_source)


def _subject_frame(mask: Image.Image, aspect: float) -> Box:
    left, top, right, bottom = subject_box(mask) or (0, 0, *mask.size)
    margin = SUBJECT_MARGIN * max(right - left, bottom - top)
    w, h = right - left + 2 * margin, bottom - top + 2 * margin
    w, h = max(w, h * aspect), max(h, w / aspect)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return round(cx - w / 2), round(cy - h / 2), round(cx + w / 2), round(cy + h / 2)


def _framing_size(framing: Preset, crop_box: Box, max_size: int) -> tuple[int, int]:
    """Without a preset: the crop's own size at the framing's exact aspect, longest side ≤ max_size (0: any).

    Never upscaled, as every non-preset job.
    """
    w, h = crop_box[2] - crop_box[0], crop_box[3] - crop_box[1]
    if framing.aspect <= 1:
        h = min(h, max_size) if max_size > 0 else h
        return max(1, round(h * framing.aspect)), max(1, h)
    w = min(w, max_size) if max_size > 0 else w
    return max(1, w), max(1, round(w / framing.aspect))


def _straighten(framed: Framed, face: Face) -> Face:
    """Level the eyes (rotating framed's images in place); returns the face as it lies afterwards."""
    framed.measured_roll = face.roll_deg
    if face.eye_distance < MIN_EYE_SPAN * (face.box[2] - face.box[0]):
        framed.turned = True  # a profile: its eye line says nothing about roll
        return face
    if abs(face.roll_deg) > MAX_ROLL_DEG:
        return face  # left as is; the compliance report says so
    original = (framed.rgb, framed.mask, framed.alpha)
    centre = face.eyes_mid
    seen, total = face, 0.0
    for attempt in range(STRAIGHTEN_PASSES):
        if abs(seen.roll_deg) < (ROLL_EPSILON if attempt == 0 else SECOND_PASS_DEG):
            break
        if abs(total + seen.roll_deg) > MAX_ROLL_DEG:
            # The first look under-read a steep roll: undo, leave the photo as it is, say so.
            framed.rgb, framed.mask, framed.alpha = original
            framed.measured_roll = total + seen.roll_deg
            framed.roll_deg, framed.straightened, framed.residual_roll = 0.0, False, None
            return face
        # PIL's angle is counter-clockwise; a positive roll (right-hand eye lower) needs exactly that.
        total += seen.roll_deg
        framed.rgb = _rotate(original[0], total, centre, (0, 0, 0))
        framed.mask = _rotate(original[1], total, centre, 0)
        framed.alpha = _rotate(original[2], total, centre, 0)
        # The mesh again on the turned photo, seeded where the face went: what is left of the roll.
        again = face_detector.refine(framed.rgb, face.rotated(total, centre))
        if again.mesh is None or math.dist(again.eyes_mid, centre) > face.eye_distance:
            # Lost after rotating: carry the first landmarks over geometrically, measure nothing more.
            framed.roll_deg, framed.straightened, framed.residual_roll = round(total, 2), True, None
            return face.rotated(total, centre)
        seen = again
    framed.roll_deg = round(total, 2)
    framed.straightened = total != 0.0
    framed.residual_roll = round(seen.roll_deg, 2)
    return seen


def no_face_message(faces: list[Face], size: tuple[int, int]) -> str:
    found = f"{len(faces)} face(s) found, none inside the subject" if faces else "no face found"
    return f"face_required: {found} in the {size[0]}x{size[1]} image"


def frame(
    rgb: Image.Image,
    mask: Image.Image,
    alpha: Image.Image | None,
    opts: RemoveOptions,
    preset: Preset | None,
    faces: list[Face],
) -> Framed:
    """Where to crop `rgb` (and `mask`, same size) and to what output size, in working pixels.

    `faces`: the detections of plan.look, found before the mask was made.
    """
    framing = preset or FACE_FRAMING
    inside = faces_in_subject(faces, mask)
    face = choose_face(faces, mask)
    framed = Framed(rgb, mask, alpha, (0, 0, 0, 0), "subject", (0, 0), framing, face, faces, len(inside))
    # Before straightening and the new background, which change the light and the pose.
    framed.face_checks = face_quality.assess(rgb, face_quality.with_mesh(rgb, face), framing.name)
    if face is not None:
        framed.face_coverage = _coverage(mask, face.box)
        # The mesh (468 points): eyes from their contours, the chin, a second roll from the midline.
        refined = face_detector.refine(rgb, face)
        framed.faces = [refined if f is face else f for f in faces]
        face = framed.face = refined
        upright = _straighten(framed, face)
        valid = None
        if framed.straightened:
            valid = _rotate(Image.new("L", rgb.size, 255), framed.roll_deg, face.eyes_mid, 0)
        framed.head = head = measure_head(upright, framed.mask, valid)
        edges = placement.cut_map(framed.mask, valid)
        placed = placement.place(head.crown, head.eyes, head.chin, head.crown_visible, framing, edges)
        framed.crop_box, framed.mode = placed.box, "face"
        framed.cut, framed.cut_bottom, framed.traded = placed.cut, placed.cut_bottom, placed.traded
    elif opts.face_required:
        raise WorkerError("no_face", no_face_message(faces, rgb.size))
    else:
        framed.crop_box = _subject_frame(mask, framing.aspect)
    if preset is not None:
        framed.out_size = preset_size(preset, opts.max_size)
    else:
        framed.out_size = _framing_size(framing, framed.crop_box, opts.output_max_size)
    return framed
