"""The `options` map of a remove request: each option declared once in OPTIONS, checked once at the door.

parse_options, the CLI's `remove` flags, node-shim/lib/contract.json (the Node client's checks) and the
option tables of the docs all derive from OPTIONS; tests/test_contract.py checks index.d.ts against it
and that Node and Python give the same verdict on every value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import WorkerError, echo
from .presets import PRESETS, RGB

DEFAULT_MAX_SIZE = 800


@dataclass(frozen=True)
class Option:
    name: str  # snake_case, as on the wire
    kind: Literal["bool", "int", "choice", "color", "str"]
    default: str  # as the docs show it
    summary: str  # one line, for the READMEs and `--help`
    doc: str = ""  # the full rule, for docs/protocol.md (the summary when empty)
    choices: tuple[str, ...] = ()  # kind "choice"
    aliases: tuple[tuple[str, str], ...] = ()  # kind "choice": other spellings accepted, (alias, choice)
    nullable: bool = False  # null is accepted (and means the default)
    min: int = 0  # kind "int"
    max: int | str | None = None  # kind "int": a bound, or the name of a `ready` limit (the worker's flag)


# "#rrggbb", the # optional, ASCII spaces around ignored; written so that JS's RegExp reads it the same way.
HEX = re.compile(r"^[ \t\n\r\f\v]*#?([0-9a-fA-F]{6})[ \t\n\r\f\v]*$")

OPTIONS: tuple[Option, ...] = (
    Option(
        "model",
        "str",
        "the worker's `--model`",
        'a model name, e.g. `u2net` (`python -m pyworker models` lists them); null or `""`: the default',
        'a model name (`python -m pyworker models` lists them); null or `""`: the worker\'s `--model`. '
        "`u2netp-int8`, `modnet-int8`: their INT8 files, derived at set-up; `u2netp-fp32`, `modnet-fp32`: FP32 "
        "(what the plain names run; docs/models.md). Loaded on first use, cached (at most `--max-models`, least "
        "recently used evicted); unknown or not installed: `model_unavailable`.",
        nullable=True,  # whether the model exists only the worker knows: model_unavailable
    ),
    Option(
        "max_size",
        "int",
        "800",
        "longest side of the result; 0 keeps the input size; never upscales",
        "longest side of the result, in pixels; `0` keeps the input size. Never upscales a cut-out. With a "
        "`preset`: the output's longest side at the preset's aspect (not given or `0`: the preset's own size). "
        "Every result is also at most `--max-output-mp` megapixels (16.8; half for `webp`), scaled down to fit.",
        nullable=True,
        max="max_pixels_side",
    ),
    Option(
        "bg_color",
        "color",
        "null",
        'null: transparent; `"#rrggbb"` or `[r, g, b]`: that background',
        'null keeps the background transparent; a colour fills it: `"#rrggbb"` (the `#` optional, spaces around '
        "ignored) or 3 integers 0-255.",
        nullable=True,
    ),
    Option(
        "format",
        "choice",
        '`"png"`',
        "encoding of the result; `jpeg` has no alpha: the background is `bg_color`, white when unset",
        'encoding of the result (`"jpg"` is read as `"jpeg"`); `jpeg` has no alpha: the background is '
        "`bg_color`, white when unset.",
        choices=("png", "webp", "jpeg"),
        aliases=(("jpg", "jpeg"),),
    ),
    Option("only_mask", "bool", "false", "return the mask as an 8-bit grayscale PNG instead of the cut-out"),
    Option(
        "refine",
        "bool",
        "false",
        "cleaner edges: opening then closing of the mask, then a feathered alpha edge",
    ),
    Option("trim", "bool", "false", "crop the result to the subject's bounding box plus `padding`"),
    Option(
        "padding",
        "int",
        "0",
        "pixels kept around the subject with `trim`, in the result's scale",
        "pixels kept around the subject with `trim`, in the result's scale. The padded box obeys `max_size` "
        "and the pixel cap like any result: past them the whole result is scaled down to fit.",
        max=4096,
    ),
    Option(
        "crop",
        "choice",
        "null",
        "`face`: frame the head, 3:4 head-and-shoulders (docs/id-photos.md)",
        choices=("face",),
        nullable=True,
    ),
    Option(
        "preset",
        "choice",
        "null",
        "an ID format: sets `crop: face`, the output size and a background; `bg_color`, `max_size` override",
        choices=tuple(PRESETS),
        nullable=True,
    ),
    Option(
        "face_required",
        "bool",
        "false",
        "with `crop`/`preset`: fail with `no_face` instead of framing the whole subject",
    ),
    Option(
        "strict",
        "bool",
        "false",
        "with `crop`/`preset`: fail with `not_compliant` when a check of `meta.compliance` fails "
        "(docs/id-photos.md#compliance)",
    ),
)
BY_NAME = {o.name: o for o in OPTIONS}


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
    strict: bool = False  # with crop/preset: a failing compliance report answers not_compliant

    @property
    def output_max_size(self) -> int:
        """Longest side of a plain cut-out: max_size when given, else DEFAULT_MAX_SIZE; 0 keeps the size."""
        return DEFAULT_MAX_SIZE if self.max_size is None else self.max_size


def expects(opt: Option, limits: dict[str, int]) -> str:
    """What a value of `opt` must be, in words (the Node client says the same: lib/request-options.js)."""
    if opt.kind == "bool":
        return "true or false"
    if opt.kind == "int":
        hi = limits.get(opt.max) if isinstance(opt.max, str) else opt.max
        return f"an integer >= {opt.min}" if hi is None else f"an integer from {opt.min} to {hi}"
    if opt.kind == "color":
        return 'null, "#rrggbb" or [r, g, b] with 0-255'
    if opt.kind == "str":
        return "a string" + (" or null" if opt.nullable else "")
    listed = [f'"{c}"' for c in opt.choices] + (["null"] if opt.nullable else [])
    return ", ".join(listed[:-1]) + " or " + listed[-1] if len(listed) > 1 else listed[0]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check(opt: Option, value: Any, limits: dict[str, int]) -> Any:
    """The value to keep, or WorkerError(bad_request) naming the option, the rule and the value."""
    if value is None and opt.nullable:
        return None
    kind, ok = opt.kind, False
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        hi = limits.get(opt.max) if isinstance(opt.max, str) else opt.max
        ok = _is_int(value) and value >= opt.min and (hi is None or value <= hi)
    elif kind == "choice":
        value = dict(opt.aliases).get(value, value) if isinstance(value, str) else value
        ok = isinstance(value, str) and value in opt.choices
    elif kind == "str":
        ok = isinstance(value, str)
    elif isinstance(value, str):  # color
        if match := HEX.fullmatch(value):
            hexa = match.group(1)
            return (int(hexa[0:2], 16), int(hexa[2:4], 16), int(hexa[4:6], 16))
    elif isinstance(value, (list, tuple)) and len(value) == 3 and all(_is_int(c) and 0 <= c <= 255 for c in value):
        return (value[0], value[1], value[2])
    if not ok:
        raise WorkerError("bad_request", f"Option '{opt.name}' must be {expects(opt, limits)}, got {echo(value)}")
    return value


def parse_options(raw: Any, limits: dict[str, int]) -> RemoveOptions:
    """`limits`: the worker's limits as in the `ready` frame (max_pixels_side bounds max_size)."""
    if raw is None:
        return RemoveOptions()
    if not isinstance(raw, dict):
        raise WorkerError("bad_request", f"'options' must be a map, got {type(raw).__name__}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        opt = BY_NAME.get(key)
        if opt is None:
            known = ", ".join(BY_NAME)
            raise WorkerError("bad_request", f"Unknown option {echo(key)}; known options: {known}")
        values[key] = check(opt, value, limits)
    return RemoveOptions(**values)
