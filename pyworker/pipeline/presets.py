"""ID formats: each preset's output size, head share, eye line, top margin and background (docs/id-photos.md).

Every figure is a share of the output frame, so a preset is independent of the
input's resolution. A table and nothing else: options.py lists the names,
plan.py applies a preset to a request, framing.py places the frame by it,
compliance.py checks the result against it.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Preset:
    name: str
    size: tuple[int, int]  # output (width, height) in pixels; its ratio is the aspect ratio
    head_range: tuple[float, float]  # crown-to-chin height the source accepts, shares of the frame height
    eye_range: tuple[float, float]  # accepted eye line, shares of the frame height measured from the top
    top_margin: float  # least room above the crown, share of the frame height
    bg_color: RGB | None  # default background; the request's bg_color overrides it
    source: str

    @property
    def aspect(self) -> float:
        return self.size[0] / self.size[1]

    @property
    def head(self) -> float:
        """The head share framing aims at: the middle of the accepted range (room for error both ways)."""
        return sum(self.head_range) / 2

    @property
    def eye_line(self) -> float:
        """The eye line framing aims at: the middle of its range, unless the crown's margin needs it lower."""
        return sum(self.eye_range) / 2


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # 35x45 mm at 300 dpi = 413x531 px. Head (chin to crown) 29-34 mm of 45;
        # eye line 50-70 % of the height from the bottom (ISO/IEC 19794-5).
        # Top margin: UK HMPO asks for "space above the head"; 3 % is ~1.4 mm.
        Preset(
            name="passport-35x45",
            size=(413, 531),
            head_range=(29 / 45, 34 / 45),
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
            head_range=(1 / 2, 1.375 / 2),
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
            head_range=(0.45, 0.65),
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
    head_range=(0.40, 0.60),
    eye_range=(0.30, 0.45),
    top_margin=0.05,
    bg_color=None,
    source="pyworker default for crop: 'face'",
)

# The model `crop: "face"` and presets use when the request names none: MODNet
# portrait matting (soft hair, only the person; docs/id-photos.md#models).
PORTRAIT_MODEL = "modnet"


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
