"""ID-photo framing: presets and the face-centred crop (issue: ID-photo output)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from ..errors import WorkerError
from .options import RemoveOptions

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Preset:
    name: str


PRESETS: dict[str, Preset] = {}


@dataclass(frozen=True)
class Plan:
    face: Box | None
    crop_box: Box
    mode: str
    out_size: tuple[int, int]


def get_preset(name: str | None) -> Preset | None:
    return None if name is None else PRESETS[name]


def apply_preset(opts: RemoveOptions, preset: Preset | None) -> RemoveOptions:
    return opts if preset is None else replace(opts, crop="face")


def working_side(opts: RemoveOptions, preset: Preset | None) -> int:
    return 0


def plan(rgb: Image.Image, mask: Image.Image, opts: RemoveOptions, preset: Preset | None) -> Plan:
    raise WorkerError("bad_request", "crop: 'face' is not available in this build")
