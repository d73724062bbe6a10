"""One remove job: decode -> infer -> post-process -> encode, each step timed.

Coordinates: every box is computed in the decoded ("working") image and
converted to input-image pixels once, for meta, at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..errors import WorkerError
from ..models import SessionCache
from . import idphoto
from .decode import Limits, load_scaled, open_image
from .encode import compose, encode
from .mask import pad_box, refine, subject_box
from .options import RemoveOptions

Box = tuple[int, int, int, int]
LANCZOS = Image.Resampling.LANCZOS


@dataclass
class Result:
    image: bytes
    mime: str
    meta: dict[str, Any]


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.ms: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.ms[name] = round((now - self.last) * 1000, 1)
        self.last = now

    def total(self) -> dict[str, float]:
        self.ms["total"] = round((time.perf_counter() - self.start) * 1000, 1)
        return self.ms


def fit(size: tuple[int, int], max_size: int) -> tuple[int, int]:
    """Scale down (never up) so the longest side is at most max_size; 0 keeps the size."""
    w, h = size
    if max_size <= 0 or max(w, h) <= max_size:
        return size
    scale = max_size / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _scaled(box: Box | None, scale: float) -> list[int] | None:
    return None if box is None else [round(v * scale) for v in box]


def _crop_resize(img: Image.Image | None, box: Box | None, size: tuple[int, int]) -> Image.Image | None:
    if img is None:
        return None
    if box is not None:
        img = img.crop(box)  # outside the frame crop() fills zeros: a transparent margin
    return img if img.size == size else img.resize(size, LANCZOS)


def remove(data: bytes, opts: RemoveOptions, models: SessionCache, limits: Limits, default_model: str) -> Result:
    clock = _Clock()
    preset = idphoto.get_preset(opts.preset)
    opts = idphoto.apply_preset(opts, preset)
    model_name = opts.model or default_model
    model = models.get(model_name)  # fail fast on a missing model, before decoding

    img = open_image(data, limits)
    # Decode no larger than needed: the output size, never below the model's
    # input (the mask would lose detail), larger when a face crop zooms in.
    target = idphoto.working_side(opts, preset) if opts.crop == "face" else opts.output_max_size
    decoded = load_scaled(img, max(target, model.input_size) if target else 0)
    del img
    rgb, alpha = decoded.rgb, decoded.alpha
    work_size = rgb.size
    clock.lap("decode")

    small_mask = model.predict(rgb)
    clock.lap("infer")

    framed: idphoto.Framed | None = None
    crop_box: Box | None = None  # in working coordinates (straightened ones when meta.roll_deg != 0)
    crop_mode = "none"
    if opts.crop == "face":
        full_mask = small_mask.resize(work_size, LANCZOS)
        framed = idphoto.frame(rgb, full_mask, alpha, opts, preset)
        rgb, full_mask, alpha = framed.rgb, framed.mask, framed.alpha
        crop_box, crop_mode, out_size = framed.crop_box, framed.mode, framed.out_size
        mask = _crop_resize(full_mask, crop_box, out_size)
        del full_mask
    else:
        out_size = fit(work_size, opts.output_max_size)
        mask = small_mask.resize(out_size, LANCZOS)
    rgb = _crop_resize(rgb, crop_box, out_size)
    alpha = _crop_resize(alpha, crop_box, out_size)
    assert rgb is not None and mask is not None
    if opts.refine:
        mask = refine(mask)
    if opts.trim and crop_mode == "none":
        box = subject_box(mask)
        if box is not None:
            box = pad_box(box, opts.padding)
            rgb, mask = rgb.crop(box), mask.crop(box)
            alpha = alpha.crop(box) if alpha is not None else None
            to_work = work_size[0] / out_size[0]
            crop_box = tuple(round(v * to_work) for v in box)  # type: ignore[assignment]
            crop_mode = "trim"
    composed = compose(rgb, mask, alpha, opts)
    report = idphoto.compliance(framed, composed, opts.bg_color) if framed is not None else None
    if report is not None and opts.strict and not report["passed"]:
        raise WorkerError("not_compliant", f"{report['preset']}: {idphoto.failing_summary(report)}")
    clock.lap("post")

    body, mime = encode(composed, opts)
    clock.lap("encode")
    to_input = decoded.input_size[0] / work_size[0]
    return Result(
        image=body,
        mime=mime,
        meta={
            "width": composed.size[0],
            "height": composed.size[1],
            "input_width": decoded.input_size[0],
            "input_height": decoded.input_size[1],
            "model": model_name,
            "crop_mode": crop_mode,
            "crop_box": _scaled(crop_box, to_input),
            "face": framed.face.to_wire(to_input) if framed is not None and framed.face is not None else None,
            "faces": None if framed is None else [f.to_wire(to_input) for f in framed.faces],
            "roll_deg": framed.roll_deg if framed is not None else None,
            "compliance": report,
            "preset": opts.preset,
            "timings_ms": clock.total(),
        },
    )
