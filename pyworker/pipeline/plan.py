"""The plan of a remove job: which preset and model, how large to decode, which faces (docs/id-photos.md).

Two steps around the decode: `begin` applies the preset to the request and
names the model (checked before any pixel is decoded); `look` runs on the
decoded photo and, for an ID photo, finds the faces before matting, because the
answer decides the model: with no face at all the job is matted by the
worker's general model, not the portrait model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from PIL import Image

from ..errors import WorkerError
from . import face as face_detector
from .face import Face
from .framing import no_face_message
from .options import RemoveOptions
from .presets import PORTRAIT_MODEL, PRESETS, Preset, preset_size

# How much larger than the output to decode, so a face crop (usually a third
# to a half of the photo's height) is not upscaled...
ZOOM = 3
# ...but never more than this (unless max_size is 0 without a preset): a
# 4000x3000 JPEG then decodes at 2000x1500 (DCT scaling, 12 MB) instead of
# full size (48 MB), which keeps a crop job's peak RSS near a plain job's.
WORKING_CAP = 2000


@dataclass(frozen=True)
class Plan:
    opts: RemoveOptions  # the request with its preset applied (crop "face", the preset's background)
    preset: Preset | None
    model: str  # the model that makes the mask
    faces: list[Face] = field(default_factory=list)  # found before matting (ID photos only)
    fallback: dict[str, str] | None = None  # {"from": portrait model, "reason": "no_face"} when it fell back

    @property
    def id_photo(self) -> bool:
        return self.opts.crop == "face"


def begin(opts: RemoveOptions, default_model: str) -> Plan:
    """Before decoding: the preset applied and the model named (ID photos are of people: the portrait model)."""
    preset = None if opts.preset is None else PRESETS[opts.preset]
    if preset is not None:
        bg = opts.bg_color if opts.bg_color is not None else preset.bg_color
        opts = replace(opts, crop="face", bg_color=bg)
    model = opts.model or (PORTRAIT_MODEL if opts.crop == "face" else default_model)
    return Plan(opts, preset, model)


def decode_side(plan: Plan, model_input: int) -> int:
    """Longest side to decode at (0: full size): no larger than needed, never below the model's input.

    An ID photo decodes ZOOM times the output's longest side (a face crop zooms in), at most WORKING_CAP.
    """
    opts = plan.opts
    if plan.id_photo:
        longest = max(preset_size(plan.preset, opts.max_size)) if plan.preset is not None else opts.output_max_size
        target = min(ZOOM * longest, WORKING_CAP) if longest else 0
    else:
        target = opts.output_max_size
    return max(target, model_input) if target else 0


def look(plan: Plan, rgb: Image.Image, default_model: str) -> Plan:
    """After decoding: an ID photo's faces, and the general model when there is none.

    With `face_required` and no face the job ends here (no_face), before paying for a mask.
    """
    if not plan.id_photo:
        return plan
    faces = face_detector.detect(rgb)
    if faces:
        return replace(plan, faces=faces)
    if plan.opts.face_required:
        raise WorkerError("no_face", no_face_message([], rgb.size))
    if plan.opts.model or plan.model == default_model:
        return plan  # a model the request named is always used; a worker started with the portrait model keeps it
    # No face: the portrait model has no person to matte and smears whatever it finds
    # (docs/id-photos.md#models); the general cut-out model's mask is better. Never loading
    # the portrait model for it keeps the job's peak at a plain cut-out's.
    return replace(plan, model=default_model, fallback={"from": plan.model, "reason": "no_face"})
