"""ID-photo framing: presets and the face-centred crop (docs/id-photos.md).

Every figure here is a share of the output frame, so a preset is independent
of the input's resolution. The steps of `plan`:

1. detect frontal faces (pipeline/face.py, Haar cascade, loaded lazily);
2. keep those inside the subject's mask and take the one nearest its top,
   larger ones winning ties (a face printed on a T-shirt is inside the mask
   but low; a face on a poster behind is outside it);
3. estimate the head from the face box: chin, eye line, and the crown (from
   the mask's top above the face when it is plausible, else a fixed factor);
4. scale the frame so crown-to-chin is the preset's head share, place it so
   the eyes sit on the preset's eye line, centre it on the face horizontally.

Without a face the frame is the subject's bounding box grown to the aspect
ratio (crop_mode "subject"), or the error no_face with `face_required`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import WorkerError
from . import face as face_detector
from .mask import SUBJECT_THRESHOLD, subject_box

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
        Preset(
            name="passport-35x45",
            size=(413, 531),
            head=0.70,
            head_range=(29 / 45, 34 / 45),
            eye_line=0.45,
            eye_range=(0.30, 0.50),
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
    bg_color=None,
    source="pyworker default for crop: 'face'",
)

# Where the head lies relative to a Haar frontal-face box of height h (measured
# on samples/astronaut.jpg and checked on portraits: the box spans about brow to
# chin). Crown-to-chin is then (CROWN + CHIN) * h = 1.55 h when the mask gives
# no better crown.
CHIN_BELOW_BOX = 0.05  # chin = box bottom + 0.05 h
EYES_IN_BOX = 0.37  # eye line = box top + 0.37 h
CROWN_ABOVE_BOX = 0.50  # crown = box top - 0.50 h (fallback)
# The mask's top above the face is taken as the crown (hair included, as the
# US rule says) only inside this band; outside it the mask has merged with
# something behind the head, or the head is cut by the photo's top.
CROWN_BAND = (0.25, 0.90)  # in h above the box top
# A face counts as the subject's when this share of its box is inside the mask.
MIN_FACE_COVERAGE = 0.5
# Weight of "near the subject's top" against "large" when ranking faces.
TOPNESS_WEIGHT = 2.0
# Least room above the crown, as a share of the frame height, when the eye
# line alone would put the crown at or beyond the top edge.
MIN_TOP_MARGIN = 0.02
# Room around the subject's box in the no-face framing, as a share of its longest side.
SUBJECT_MARGIN = 0.05
# How much larger than the output to decode, so a face crop (usually a third
# to a half of the photo's height) is not upscaled...
ZOOM = 3
# ...but never more than this (unless max_size is 0 without a preset): a
# 4000x3000 JPEG then decodes at 2000x1500 (DCT scaling, 12 MB) instead of
# full size (48 MB), which keeps a crop job's peak RSS near a plain job's.
WORKING_CAP = 2000


@dataclass(frozen=True)
class Plan:
    face: Box | None
    crop_box: Box
    mode: str
    out_size: tuple[int, int]
    faces: tuple[Box, ...] = ()  # every detection, the chosen one included


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


def choose_face(faces: list[Box], mask: Image.Image) -> Box | None:
    """The subject's face: inside the mask, nearest the subject's top, larger first on ties."""
    inside = [f for f in faces if _coverage(mask, f) >= MIN_FACE_COVERAGE]
    if not inside:
        return None
    subject = subject_box(mask) or (0, 0, *mask.size)
    top, height = subject[1], max(1, subject[3] - subject[1])
    biggest = max(f[3] - f[1] for f in inside)

    def score(f: Box) -> float:
        topness = min(1.0, max(0.0, (f[1] - top) / height))
        return (f[3] - f[1]) / biggest - TOPNESS_WEIGHT * topness

    return max(inside, key=score)


def crown_from_mask(mask: Image.Image, face: Box) -> int | None:
    """The mask's top above the face's middle half, when it lies in CROWN_BAND."""
    left, top, right, _ = face
    h = face[3] - top
    quarter = (right - left) // 4
    y0 = top - round(CROWN_BAND[1] * h)
    if y0 < 0:
        return None  # the band leaves the photo: the head may be cut by its top edge
    arr = np.asarray(mask.crop((left + quarter, y0, right - quarter, top))) >= SUBJECT_THRESHOLD
    rows = np.flatnonzero(arr.any(axis=1))
    if rows.size == 0 or rows[0] == 0:
        return None  # no hair above the face, or the mask runs on above the band
    crown = y0 + int(rows[0])
    return crown if crown <= top - CROWN_BAND[0] * h else None


def _face_frame(face: Box, mask: Image.Image, framing: Preset) -> Box:
    left, top, right, bottom = face
    h = bottom - top
    chin = bottom + CHIN_BELOW_BOX * h
    eyes = top + EYES_IN_BOX * h
    crown = crown_from_mask(mask, face)
    crown_y = float(crown) if crown is not None else top - CROWN_ABOVE_BOX * h
    frame_h = (chin - crown_y) / framing.head
    frame_w = frame_h * framing.aspect
    y0 = eyes - framing.eye_line * frame_h
    y0 = min(y0, crown_y - MIN_TOP_MARGIN * frame_h)  # never cut the crown
    x0 = (left + right) / 2 - frame_w / 2
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


def plan(rgb: Image.Image, mask: Image.Image, opts: RemoveOptions, preset: Preset | None) -> Plan:
    """Where to crop `rgb` (and `mask`, same size) and to what output size, in working pixels."""
    framing = preset or FACE_FRAMING
    faces = face_detector.detect(rgb)
    face = choose_face(faces, mask)
    if face is not None:
        crop_box, mode = _face_frame(face, mask, framing), "face"
    elif opts.face_required:
        found = f"{len(faces)} face(s) found, none inside the subject" if faces else "no face found"
        raise WorkerError("no_face", f"face_required: {found} in the {rgb.size[0]}x{rgb.size[1]} image")
    else:
        crop_box, mode = _subject_frame(mask, framing.aspect), "subject"
    if preset is not None:
        out_size = preset_size(preset, opts.max_size)
    else:
        out_size = _framing_size(framing, crop_box, opts.output_max_size)
    return Plan(face=face, crop_box=crop_box, mode=mode, out_size=out_size, faces=tuple(faces))
