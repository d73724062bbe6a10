"""The `options` map of a remove request, checked once at the door."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import WorkerError

FORMATS = {"png": "png", "webp": "webp", "jpeg": "jpeg", "jpg": "jpeg"}
CROPS = (None, "face")
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
MAX_PADDING = 4096
DEFAULT_MAX_SIZE = 800

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class RemoveOptions:
    model: str | None = None
    max_size: int | None = None  # None: not given (800 for a cut-out, a preset's own size)
    bg_color: RGB | None = None
    format: str = "png"
    only_mask: bool = False
    refine: bool = False
    trim: bool = False
    padding: int = 0
    crop: str | None = None
    preset: str | None = None
    face_required: bool = False

    @property
    def output_max_size(self) -> int:
        """Longest side of a plain cut-out: max_size when given, else DEFAULT_MAX_SIZE; 0 keeps the size."""
        return DEFAULT_MAX_SIZE if self.max_size is None else self.max_size


def _bad(message: str) -> WorkerError:
    return WorkerError("bad_request", message)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(f"Option '{key}' must be true or false, got {value!r}")
    return value


def _int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"Option '{key}' must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise _bad(f"Option '{key}' ({value}) must be between {lo} and {hi}")
    return value


def _is_byte(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255


def parse_color(value: Any, key: str = "bg_color") -> RGB | None:
    if value is None:
        return None
    if isinstance(value, str):
        match = _HEX.match(value.strip())
        if match:
            hexa = match.group(1)
            return (int(hexa[0:2], 16), int(hexa[2:4], 16), int(hexa[4:6], 16))
    elif isinstance(value, (list, tuple)) and len(value) == 3 and all(_is_byte(c) for c in value):
        return (value[0], value[1], value[2])
    raise _bad(f"Option '{key}' must be null, \"#rrggbb\" or [r, g, b] with 0-255, got {value!r}")


def parse_options(raw: Any, max_side: int, presets: list[str]) -> RemoveOptions:
    if raw is None:
        return RemoveOptions()
    if not isinstance(raw, dict):
        raise _bad(f"'options' must be a map, got {type(raw).__name__}")
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "model":
            if value is not None and not isinstance(value, str):
                raise _bad(f"Option 'model' must be a model name, got {value!r}")
            fields["model"] = value
        elif key == "max_size":
            fields["max_size"] = None if value is None else _int(key, value, 0, max_side)
        elif key == "bg_color":
            fields["bg_color"] = parse_color(value)
        elif key == "format":
            if value not in FORMATS:
                raise _bad(f"Option 'format' must be one of png, webp, jpeg, got {value!r}")
            fields["format"] = FORMATS[value]
        elif key in ("only_mask", "refine", "trim", "face_required"):
            fields[key] = _bool(key, value)
        elif key == "padding":
            fields["padding"] = _int(key, value, 0, MAX_PADDING)
        elif key == "crop":
            if value not in CROPS:
                raise _bad(f"Option 'crop' must be null or \"face\", got {value!r}")
            fields["crop"] = value
        elif key == "preset":
            if value is not None and value not in presets:
                raise _bad(f"Unknown preset {value!r}; presets: {', '.join(presets)}")
            fields["preset"] = value
        else:
            known = ", ".join(RemoveOptions.__dataclass_fields__)
            raise _bad(f"Unknown option {key!r}; known options: {known}")
    return RemoveOptions(**fields)
