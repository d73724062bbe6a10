"""ID-photo framing: presets, the face-centred crop and its compliance report (docs/id-photos.md).

Every figure here is a share of the output frame, so a preset is independent
of the input's resolution. The steps of `frame`:

1. detect faces with landmarks (pipeline/face.py, YuNet, loaded lazily),
   before the mask is made: with no face at all the job is matted by the
   worker's general model instead of the portrait model (pipeline/__init__.py);
2. keep those inside the subject's mask and take the one nearest its top,
   larger ones winning ties (a face printed on a T-shirt is inside the mask
   but low; a face on a poster behind is outside it);
3. straighten: rotate the photo and its mask about the eye midpoint so the
   eyes are level (not beyond ±MAX_ROLL_DEG), then look again to measure
   what is left;
4. measure the head: eye line from the eyes, chin from the eyes and mouth
   (CHIN_FACTOR), crown from the mask straight above the eyes;
5. scale the frame so crown-to-chin is the preset's head share, place it so
   the eyes sit on the preset's eye line, keep the preset's top margin above
   the crown, centre it on the eyes.

`compliance` then checks the result against the preset (meta.compliance).
Without a face the frame is the subject's bounding box grown to the aspect
ratio (crop_mode "subject"), or the error no_face with `face_required`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..errors import WorkerError
from . import face as face_detector
from .face import Face
from .mask import subject_box

if TYPE_CHECKING:  # options.py reads PRESETS for its table; at run time idphoto needs only the values
    from .options import RGB, RemoveOptions

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Preset:
    name: str
    size: tuple[int, int]  # output (width, height) in pixels; its ratio is the aspect ratio
    head: float  # crown-to-chin height as a share of the frame height: the target
    head_range: tuple[float, float]  # what the source accepts, as shares of the frame height
    eye_line: float  # eye line, share of the frame height measured from the top: the target
    eye_range: tuple[float, float]  # accepted eye line, shares from the top
    top_margin: float  # least room above the crown, share of the frame height
    bg_color: RGB | None  # default background; the request's bg_color overrides it
    source: str

    @property
    def aspect(self) -> float:
        return self.size[0] / self.size[1]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # 35x45 mm at 300 dpi = 413x531 px. Head (chin to crown) 29-34 mm of 45;
        # eye line 50-70 % of the height from the bottom (ISO/IEC 19794-5).
        # Top margin: UK HMPO asks for "space above the head"; 3 % is ~1.4 mm.
        Preset(
            name="passport-35x45",
            size=(413, 531),
            head=0.70,
            head_range=(29 / 45, 34 / 45),
            eye_line=0.45,
            eye_range=(0.30, 0.50),
            top_margin=0.03,
            bg_color=(240, 240, 240),
            source="ICAO 9303 / ISO/IEC 19794-5; UK HM Passport Office: 35x45 mm, head 29-34 mm, light grey",
        ),
        # 2x2 in, 600x600 px (State Dept digital minimum). Head 1-1 3/8 in of 2 in;
        # eyes 1 1/8-1 3/8 in from the bottom, i.e. 31.25-43.75 % from the top.
        Preset(
            name="us-2x2",
            size=(600, 600),
            head=0.60,
            head_range=(1 / 2, 1.375 / 2),
            eye_line=0.375,
            eye_range=(0.3125, 0.4375),
            top_margin=0.03,
            bg_color=(255, 255, 255),
            source="US Department of State: 2x2 in, 600x600 px, head 1-1 3/8 in, eyes 1 1/8-1 3/8 in from bottom",
        ),
        # House style for badges and profile pictures: head and shoulders, the
        # face a little above the centre so a circular mask keeps the chin.
        Preset(
            name="avatar",
            size=(512, 512),
            head=0.55,
            head_range=(0.45, 0.65),
            eye_line=0.42,
            eye_range=(0.35, 0.50),
            top_margin=0.05,
            bg_color=(230, 236, 242),
            source="pyworker house style (no standard)",
        ),
    )
}

# `crop: "face"` without a preset: head and shoulders in a 3:4 portrait, the
# output no larger than max_size and never upscaled (as every non-preset job).
FACE_FRAMING = Preset(
    name="face",
    size=(600, 800),
    head=0.50,
    head_range=(0.40, 0.60),
    eye_line=0.38,
    eye_range=(0.30, 0.45),
    top_margin=0.05,
    bg_color=None,
    source="pyworker default for crop: 'face'",
)

# The model `crop: "face"` and presets use when the request names none: MODNet
# portrait matting (soft hair, only the person; docs/id-photos.md#models).
PORTRAIT_MODEL = "modnet"

# Chin below the eye line, in units of the eye-line-to-mouth distance
# (straightened image). Calibrated on samples/astronaut.jpg, measured by hand:
# pupils at y 101 and 102.5, chin at y 164; the detector's mouth corners at
# y 142-143: (164 - 101.5) / (142.5 - 101.5) = 1.52. Anthropometric tables give
# 1.5-1.6 for adults (stomion-to-gnathion ≈ half of eye-to-stomion).
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
# How much larger than the output to decode, so a face crop (usually a third
# to a half of the photo's height) is not upscaled...
ZOOM = 3
# ...but never more than this (unless max_size is 0 without a preset): a
# 4000x3000 JPEG then decodes at 2000x1500 (DCT scaling, 12 MB) instead of
# full size (48 MB), which keeps a crop job's peak RSS near a plain job's.
WORKING_CAP = 2000

# Compliance thresholds that are not per preset (docs/id-photos.md#compliance).
MAX_RESIDUAL_ROLL = 3.0  # degrees; standards say "eyes level" with no figure; 3° is below what people notice
MAX_UPSCALE = 1.5  # output pixels per source pixel (the figure; above it the print looks soft)
MIN_BG_UNIFORMITY = 0.95  # share of the border strip that is plain background
BG_STRIP = 0.08  # without a face: the top strip checked, share of the frame height
# Semi-axes (horizontal, vertical) of the ellipse around the head, in head heights:
# the head is about 0.75 as wide as tall, hair wider still; 10 % slack vertically.
BG_HEAD_ELLIPSE = (0.55, 0.55)
BG_TOLERANCE = 12  # grey levels from the background colour that still count as background


@dataclass(frozen=True)
class Head:
    """The head measured in the straightened working image (y down)."""

    eyes: tuple[float, float]
    chin: float
    crown: float
    crown_visible: bool  # the photo shows the top of the head (the mask reaches background above it)
    crown_source: str  # "mask" or "estimate"


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


def get_preset(name: str | None) -> Preset | None:
    return None if name is None else PRESETS[name]


def apply_preset(opts: RemoveOptions, preset: Preset | None) -> RemoveOptions:
    if preset is None:
        return opts
    bg = opts.bg_color if opts.bg_color is not None else preset.bg_color
    return replace(opts, crop="face", bg_color=bg)


def preset_size(preset: Preset, max_size: int | None) -> tuple[int, int]:
    """The preset's pixel size, or with max_size given, that longest side at the preset's aspect.

    max_size not given (None) or 0 keeps the preset's own size.
    """
    w, h = preset.size
    if not max_size:
        return w, h
    if w >= h:
        return max_size, max(1, round(max_size * h / w))
    return max(1, round(max_size * w / h)), max_size


def working_side(opts: RemoveOptions, preset: Preset | None) -> int:
    """Longest side to decode at (0: full size): ZOOM times the output's longest side, at most WORKING_CAP."""
    longest = max(preset_size(preset, opts.max_size)) if preset is not None else opts.output_max_size
    return min(ZOOM * longest, WORKING_CAP) if longest else 0


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


def _nearest(faces: list[Face], point: tuple[float, float]) -> Face | None:
    return min(faces, key=lambda f: math.dist(f.eyes_mid, point), default=None)


def _rotate(img: Image.Image | None, degrees: float, centre: tuple[float, float], fill: Any) -> Image.Image | None:
    if img is None:
        return None
    # Bilinear: the crop is resized with Lanczos afterwards anyway, and bicubic costs twice as much.
    return img.rotate(degrees, resample=Image.Resampling.BILINEAR, center=centre, fillcolor=fill)


def measure_head(face: Face, mask: Image.Image, valid: Image.Image | None) -> Head:
    """Eye line, chin and crown of an upright face; `valid` marks pixels that came from the photo."""
    ex, ey = face.eyes_mid
    chin = ey + CHIN_FACTOR * max(1.0, face.mouth_mid[1] - ey)
    eye_to_chin = chin - ey
    estimate = ey - CROWN_FACTOR * eye_to_chin
    half = max(2, round(CROWN_BAND * face.eye_distance))
    x0, x1 = max(0, round(ex) - half), min(mask.width, round(ex) + half)
    top = max(0, min(mask.height, round(ey)))
    band = np.asarray(mask.crop((x0, 0, x1, top)))
    head_rows = (band >= CROWN_THRESHOLD).any(axis=1)
    inside = np.asarray(valid.crop((x0, 0, x1, top))).min(axis=1) >= 128 if valid is not None else np.ones(top, bool)
    crown, visible = None, False
    for y in range(top - 1, -1, -1):  # up from the eyes
        if not inside[y]:
            break  # left the photo (a straightened corner) while still on the head
        if not head_rows[y]:
            crown, visible = float(y + 1), True
            break
    if crown is None:  # the head runs to the photo's edge: the photo cuts the crown
        return Head((ex, ey), chin, min(estimate, 0.0), False, "estimate")
    lo, hi = CROWN_PLAUSIBLE
    if not lo * eye_to_chin <= ey - crown <= hi * eye_to_chin:
        return Head((ex, ey), chin, estimate, visible, "estimate")
    return Head((ex, ey), chin, crown, True, "mask")


def _face_frame(head: Head, framing: Preset) -> Box:
    ex, ey = head.eyes
    height = head.chin - head.crown
    frame_h = height / framing.head
    # The eye line at its target with the top margin kept needs at least this
    # frame; grow towards it, but not so far that the head drops out of range.
    room = framing.eye_line - framing.top_margin
    if head.crown_visible and room > 0:
        needed = (ey - head.crown) / room
        if needed > frame_h:
            frame_h = min(needed, height / framing.head_range[0])
    frame_w = frame_h * framing.aspect
    y0 = ey - framing.eye_line * frame_h
    if head.crown_visible:
        y0 = min(y0, head.crown - framing.top_margin * frame_h)  # the crown is never cut
    x0 = ex - frame_w / 2
    return round(x0), round(y0), round(x0 + frame_w), round(y0 + frame_h)


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
        framed.rgb = _rotate(original[0], total, centre, (0, 0, 0))  # type: ignore[assignment]
        framed.mask = _rotate(original[1], total, centre, 0)  # type: ignore[assignment]
        framed.alpha = _rotate(original[2], total, centre, 0)
        again = _nearest(face_detector.detect(framed.rgb), centre)
        if again is None or math.dist(again.eyes_mid, centre) > face.eye_distance:
            # Lost after rotating: carry the first landmarks over geometrically, measure nothing more.
            framed.roll_deg, framed.straightened, framed.residual_roll = round(total, 2), True, None
            return face.rotated(total, centre)
        seen = again
    framed.roll_deg = round(total, 2)
    framed.straightened = total != 0.0
    framed.residual_roll = round(seen.roll_deg, 2)
    return seen


def detect_faces(rgb: Image.Image) -> list[Face]:
    """Step 1, run before matting: with no face at all the job takes the general model's mask (pipeline)."""
    return face_detector.detect(rgb)


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

    `faces`: detect_faces(rgb), found before the mask was made.
    """
    framing = preset or FACE_FRAMING
    inside = faces_in_subject(faces, mask)
    face = choose_face(faces, mask)
    framed = Framed(rgb, mask, alpha, (0, 0, 0, 0), "subject", (0, 0), framing, face, faces, len(inside))
    if face is not None:
        framed.face_coverage = _coverage(mask, face.box)
        upright = _straighten(framed, face)
        valid = None
        if framed.straightened:
            valid = _rotate(Image.new("L", rgb.size, 255), framed.roll_deg, face.eyes_mid, 0)
        framed.head = measure_head(upright, framed.mask, valid)
        framed.crop_box, framed.mode = _face_frame(framed.head, framing), "face"
    elif opts.face_required:
        raise WorkerError("no_face", no_face_message(faces, rgb.size))
    else:
        framed.crop_box = _subject_frame(mask, framing.aspect)
    if preset is not None:
        framed.out_size = preset_size(preset, opts.max_size)
    else:
        framed.out_size = _framing_size(framing, framed.crop_box, opts.output_max_size)
    return framed


# ---- compliance ------------------------------------------------------------------------


def _check(name: str, value: Any, accepted: Any, passed: bool, note: str | None = None) -> dict[str, Any]:
    check = {"name": name, "value": value, "accepted": accepted, "passed": bool(passed)}
    if note:
        check["note"] = note
    return check


def _in(value: float, lo: float, hi: float) -> bool:
    return lo <= value <= hi


def _background_uniformity(composed: Image.Image, bg: RGB | None, head: Head | None, box: Box) -> float:
    """Share of the background zone that is plain background colour (or transparent).

    The zone is every pixel above the mouth (halfway from the eyes to the chin:
    lower, shoulders and a collar may rise) and outside an ellipse around the
    head (BG_HEAD_ELLIPSE x head height): where a passport photo shows only the
    backdrop. Fringes the mask kept (a flag, a tripod, a doorframe) lower it.
    Without a face, the top BG_STRIP of the frame.
    """
    w, h = composed.size
    arr = np.asarray(composed)
    if head is None:
        zone = np.zeros((h, w), bool)
        zone[: max(1, round(BG_STRIP * h))] = True
    else:
        k = h / max(1, box[3] - box[1])  # working -> output pixels
        cx, cy = (head.eyes[0] - box[0]) * k, ((head.crown + head.chin) / 2 - box[1]) * k
        size = (head.chin - head.crown) * k
        ax, ay = BG_HEAD_ELLIPSE[0] * size, BG_HEAD_ELLIPSE[1] * size
        yy, xx = np.mgrid[0:h, 0:w]
        outside = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 > 1
        zone = outside & (yy < ((head.eyes[1] + head.chin) / 2 - box[1]) * k)
    px = arr[zone].astype(np.int16)
    if px.size == 0:
        return 1.0
    if composed.mode == "L":  # only_mask: the mask itself, background is 0
        plain = px <= BG_TOLERANCE
    elif composed.mode == "RGBA" and bg is None:
        plain = px[:, 3] <= BG_TOLERANCE
    else:
        colour = np.asarray(bg if bg is not None else (255, 255, 255), dtype=np.int16)
        plain = (np.abs(px[:, :3] - colour) <= BG_TOLERANCE).all(axis=1)
    return float(plain.mean())


def compliance(
    framed: Framed, composed: Image.Image, bg: RGB | None, fell_back: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The report of meta.compliance: every check with its value, accepted range and verdict.

    `fell_back`: (portrait model, model used) when no face was found and the general model made the mask.
    """
    p = framed.framing
    x0, y0, x1, y1 = framed.crop_box
    frame_h = max(1, y1 - y0)
    out_h = framed.out_size[1]
    checks = []
    head = framed.head
    if head is not None:
        share = (head.chin - head.crown) / frame_h
        eye = (head.eyes[1] - y0) / frame_h
        head_range = [round(v, 3) for v in p.head_range]
        checks.append(_check("head_height", round(share, 3), head_range, _in(share, *p.head_range)))
        checks.append(_check("eye_line", round(eye, 3), list(p.eye_range), _in(eye, *p.eye_range)))
    else:
        checks.append(_check("head_height", None, [round(v, 3) for v in p.head_range], False, "no face"))
        checks.append(_check("eye_line", None, list(p.eye_range), False, "no face"))
    limit = [-MAX_RESIDUAL_ROLL, MAX_RESIDUAL_ROLL]
    if framed.measured_roll is None:
        checks.append(_check("roll", None, limit, False, "no face"))
    elif framed.turned:
        checks.append(_check("roll", None, limit, False, "the face is turned away: not frontal, roll not measured"))
    elif abs(framed.measured_roll) > MAX_ROLL_DEG:
        note = f"not straightened: the eye line is {framed.measured_roll:.1f}° off, beyond ±{MAX_ROLL_DEG:.0f}°"
        checks.append(_check("roll", round(framed.measured_roll, 1), limit, False, note))
    else:
        residual = framed.residual_roll
        note = f"straightened by {framed.roll_deg:.1f}°" if framed.straightened else None
        if residual is None:
            note = f"straightened by {framed.roll_deg:.1f}°, face not found again to measure what is left"
            checks.append(_check("roll", None, limit, False, note))
        else:
            checks.append(_check("roll", round(residual, 1), limit, abs(residual) <= MAX_RESIDUAL_ROLL, note))
    if head is not None:
        room = (head.crown - y0) / frame_h
        inside = head.crown_visible and room >= p.top_margin - 0.5 / frame_h
        note = None if head.crown_visible else "the photo cuts the top of the head"
        checks.append(_check("crown_visible", head.crown_visible and inside, True, inside, note))
    else:
        checks.append(_check("crown_visible", None, True, False, "no face"))
    note = None
    if fell_back is not None:
        note = f"no face found: the mask is the general model {fell_back[1]}'s, not the portrait model {fell_back[0]}'s"
    checks.append(_check("faces", framed.faces_in_subject, 1, framed.faces_in_subject == 1, note))
    coverage = round(framed.face_coverage, 2)
    checks.append(_check("face_in_subject", coverage, [MIN_FACE_COVERAGE, 1.0], coverage >= MIN_FACE_COVERAGE))
    upscale = out_h / frame_h
    note = f"upscaled {upscale:.1f}x from a {x1 - x0}x{frame_h} px region" if upscale > MAX_UPSCALE else None
    checks.append(_check("upscale", round(upscale, 2), [0, MAX_UPSCALE], upscale <= MAX_UPSCALE, note))
    uniform = _background_uniformity(composed, bg, head, framed.crop_box)
    checks.append(_check("background", round(uniform, 3), [MIN_BG_UNIFORMITY, 1.0], uniform >= MIN_BG_UNIFORMITY))
    return {"preset": p.name, "passed": all(c["passed"] for c in checks), "checks": checks}


def failing_summary(report: dict[str, Any]) -> str:
    """'head_height 0.81 (accepted 0.644-0.756); upscale 3.6 (accepted 0-1.5)' for the not_compliant message."""
    parts = []
    for c in report["checks"]:
        if c["passed"]:
            continue
        acc = c["accepted"]
        acc_text = f"{acc[0]}-{acc[1]}" if isinstance(acc, list) else str(acc).lower()
        value = str(c["value"]).lower() if isinstance(c["value"], bool) or c["value"] is None else c["value"]
        note = f", {c['note']}" if c.get("note") else ""
        parts.append(f"{c['name']} {value} (accepted {acc_text}{note})")
    return "; ".join(parts)
