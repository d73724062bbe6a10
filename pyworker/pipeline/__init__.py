"""One remove job: decode -> infer -> post-process -> encode, each step timed.

Coordinates: every box is computed in the decoded ("working") image and
converted to input-image pixels once, for meta, at the end.
"""

from __future__ import annotations

import math
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
        """Charge the time since the last lap to `name` (added up when a step comes in two parts)."""
        now = time.perf_counter()
        self.ms[name] = round(self.ms.get(name, 0.0) + (now - self.last) * 1000, 1)
        self.last = now

    def total(self) -> dict[str, float]:
        self.ms["total"] = round((time.perf_counter() - self.start) * 1000, 1)
        return self.ms


def shrink(size: tuple[int, int], max_size: int, max_pixels: int) -> float:
    """The factor (<= 1) that brings `size` to a longest side <= max_size (0: any) and <= max_pixels pixels."""
    w, h = size
    scale = 1.0
    if max_size > 0 and max(w, h) > max_size:
        scale = max_size / max(w, h)
    if w * h * scale * scale > max_pixels:
        scale = min(scale, math.sqrt(max_pixels / (w * h)))
    return scale


def fit(size: tuple[int, int], max_size: int, max_pixels: int = 1 << 62) -> tuple[int, int]:
    """Scale down (never up) so the longest side is at most max_size (0: any) and the area at most max_pixels."""
    scale = shrink(size, max_size, max_pixels)
    if scale >= 1:
        return size
    w, h = size
    out = max(1, round(w * scale)), max(1, round(h * scale))
    if out[0] * out[1] > max_pixels:  # rounding up may overshoot the cap by a row: round down instead
        out = max(1, math.floor(w * scale)), max(1, math.floor(h * scale))
    return out


def output_pixel_cap(opts: RemoveOptions, limits: Limits) -> int:
    """Largest result for the job's format: libwebp's encoder needs ~15 bytes a pixel (PNG/JPEG ~5), so half."""
    fmt = "png" if opts.only_mask else opts.format
    return limits.max_output_pixels // 2 if fmt == "webp" else limits.max_output_pixels


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
    id_photo = opts.crop == "face"
    # ID photos are of people: the portrait matting model unless the request names one.
    model_name = opts.model or (idphoto.PORTRAIT_MODEL if id_photo else default_model)
    # A missing model fails fast, before decoding. A cut-out loads its model before decoding too (a
    # first load never adds to a decoded photo's peak); an ID photo only once the faces say which one.
    model_class = models.check(model_name)
    model = None if id_photo else models.get(model_name)

    img = open_image(data, limits)
    # Decode no larger than needed: the output size, never below the model's
    # input (the mask would lose detail), larger when a face crop zooms in.
    target = idphoto.working_side(opts, preset) if id_photo else opts.output_max_size
    decoded = load_scaled(img, max(target, model_class.input_size) if target else 0)
    del img
    rgb, alpha = decoded.rgb, decoded.alpha
    input_size = decoded.input_size
    del decoded  # each resize below rebinds rgb: the full-size picture must not outlive it
    work_size = rgb.size
    clock.lap("decode")

    # An ID photo looks for faces before matting: the mask model depends on the answer.
    faces = idphoto.detect_faces(rgb) if id_photo else []
    fallback: dict[str, str] | None = None
    if id_photo and not faces:
        if opts.face_required:  # answered before paying for a mask
            raise WorkerError("no_face", idphoto.no_face_message([], rgb.size))
        if not opts.model and model_name != default_model:
            # No face: the portrait model has no person to matte and smears whatever it
            # finds (docs/id-photos.md#models); the general cut-out model's mask is better.
            # Never loading the portrait model for it keeps the job's peak at a plain cut-out's.
            fallback = {"from": model_name, "reason": "no_face"}
            model_name = default_model
    if model is None:
        clock.lap("post")  # face detection is part of the framing, as it always was
        model = models.get(model_name)

    small_mask = model.predict(rgb)
    clock.lap("infer")
    clock.ms["run"] = round(model.last_run_ms, 1)  # session.run alone, part of infer

    cap = output_pixel_cap(opts, limits)
    framed: idphoto.Framed | None = None
    crop_box: Box | None = None  # in working coordinates (straightened ones when meta.roll_deg != 0)
    crop_mode = "none"
    if opts.crop == "face":
        full_mask = small_mask.resize(work_size, LANCZOS)
        framed = idphoto.frame(rgb, full_mask, alpha, opts, preset, faces)
        rgb, full_mask, alpha = framed.rgb, framed.mask, framed.alpha
        crop_box, crop_mode = framed.crop_box, framed.mode
        out_size = fit(framed.out_size, 0, cap)
        mask = _crop_resize(full_mask, crop_box, out_size)
        del full_mask
    else:
        out_size = fit(work_size, opts.output_max_size, cap)
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
            # The padded box obeys max_size and the pixel cap like any result: past them, shrink the
            # picture first and cut the shrunk box, so a wide margin never exists at full size.
            scale = shrink((box[2] - box[0], box[3] - box[1]), opts.output_max_size, cap)
            if scale < 1:
                small = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
                rgb, mask = rgb.resize(small, LANCZOS), mask.resize(small, LANCZOS)
                alpha = alpha.resize(small, LANCZOS) if alpha is not None else None
                left, top = math.floor(box[0] * scale), math.floor(box[1] * scale)
                bound = fit((box[2] - box[0], box[3] - box[1]), opts.output_max_size, cap)
                box = (left, top, left + bound[0], top + bound[1])
            to_work = work_size[0] / rgb.width
            rgb, mask = rgb.crop(box), mask.crop(box)
            alpha = alpha.crop(box) if alpha is not None else None
            crop_box = tuple(round(v * to_work) for v in box)  # type: ignore[assignment]
            crop_mode = "trim"
    composed = compose(rgb, mask, alpha, opts)
    report = None
    if framed is not None:
        report = idphoto.compliance(
            framed, composed, opts.bg_color, (fallback["from"], model_name) if fallback else None
        )
    if report is not None and opts.strict and not report["passed"]:
        raise WorkerError("not_compliant", f"{report['preset']}: {idphoto.failing_summary(report)}")
    del rgb, mask, alpha  # the encoder's buffers (~15 bytes a pixel for WEBP) come next
    clock.lap("post")

    body, mime = encode(composed, opts)
    clock.lap("encode")
    to_input = input_size[0] / work_size[0]
    return Result(
        image=body,
        mime=mime,
        meta={
            "width": composed.size[0],
            "height": composed.size[1],
            "input_width": input_size[0],
            "input_height": input_size[1],
            "model": model_name,
            "model_fallback": fallback,
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
