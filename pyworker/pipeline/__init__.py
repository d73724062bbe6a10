"""One remove job: decode -> plan -> mask -> frame -> compose -> encode, each step timed.

Coordinates: every box is computed in the decoded ("working") image and
converted to input-image pixels once, for meta, at the end.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, overload

from PIL import Image

from ..errors import WorkerError
from ..limits import Limits
from ..models import SessionCache
from . import edges, plan
from . import face as face_detector
from .compliance import compliance, failing_summary, measure_output
from .decode import load_scaled, open_image
from .encode import compose, encode
from .framing import Framed, frame
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


@overload
def _crop_resize(img: Image.Image, box: Box | None, size: tuple[int, int]) -> Image.Image: ...
@overload
def _crop_resize(img: None, box: Box | None, size: tuple[int, int]) -> None: ...
@overload
def _crop_resize(img: Image.Image | None, box: Box | None, size: tuple[int, int]) -> Image.Image | None: ...
def _crop_resize(img: Image.Image | None, box: Box | None, size: tuple[int, int]) -> Image.Image | None:
    if img is None:
        return None
    if box is not None:
        img = img.crop(box)  # outside the frame crop() fills zeros: a transparent margin
    return img if img.size == size else img.resize(size, LANCZOS)


def remove(data: bytes, opts: RemoveOptions, models: SessionCache, limits: Limits, default_model: str) -> Result:
    """decode -> plan -> mask -> frame -> compose -> encode (the plan's first half, before decoding, fails fast)."""
    clock = _Clock()
    job = plan.begin(opts, default_model)
    # A missing model fails fast, before decoding. A cut-out loads its model before decoding too (a
    # first load never adds to a decoded photo's peak); an ID photo only once the faces say which one.
    model_class = models.check(job.model)
    model = None if job.id_photo else models.get(job.model)

    img = open_image(data, limits)
    decoded = load_scaled(img, plan.decode_side(job, model_class.input_size))
    del img
    rgb, alpha = decoded.rgb, decoded.alpha
    input_size = decoded.input_size
    del decoded  # each resize below rebinds rgb: the full-size picture must not outlive it
    work_size = rgb.size
    clock.lap("decode")

    job = plan.look(job, rgb, default_model)  # an ID photo's faces, found before matting, choose the model
    opts = job.opts
    if model is None:
        clock.lap("post")  # face detection is part of the framing, as it always was
        model = models.get(job.model)
    small_mask = model.predict(rgb)
    clock.lap("infer")
    clock.ms["run"] = float(round(model.last_run_ms, 1))  # session.run alone, part of infer

    cap = output_pixel_cap(opts, limits)
    framed: Framed | None = None
    if job.id_photo:
        framed = frame(rgb, small_mask.resize(work_size, LANCZOS), alpha, opts, job.preset, job.faces)
        out_size = fit(framed.out_size, 0, cap)
        rgb = _crop_resize(framed.rgb, framed.crop_box, out_size)
        mask = _crop_resize(framed.mask, framed.crop_box, out_size)
        alpha = _crop_resize(framed.alpha, framed.crop_box, out_size)
        crop_box, crop_mode = framed.crop_box, framed.mode  # working pixels, straightened when roll_deg != 0
        mask = edges.main_person(mask, framed.output_point(framed.head.eyes, out_size) if framed.head else None)
        rgb = edges.foreground(rgb, mask)  # the hair's own colour, not the old backdrop's, on the new background
    else:
        out_size = fit(work_size, opts.output_max_size, cap)
        mask, crop_box, crop_mode = small_mask.resize(out_size, LANCZOS), None, "none"
        rgb, alpha = _crop_resize(rgb, None, out_size), _crop_resize(alpha, None, out_size)
    if opts.refine:
        mask = refine(mask)
    if opts.trim and crop_mode == "none":
        rgb, mask, alpha, crop_box, crop_mode = _trim(rgb, mask, alpha, opts, cap, work_size)
    composed = compose(rgb, mask, alpha, opts)
    report = None
    if framed is not None:
        # The report measures the output itself: landmarks run again on the final picture, on the face where
        # the framed person's eyes should be (a neighbour beside them, even a larger one, is not measured).
        out = None
        if framed.head:
            near = framed.output_point(framed.head.eyes, composed.size)
            out = measure_output(face_detector.measure(_shown(composed, rgb, mask), near), mask)
        fell_back = (job.fallback["from"], job.model) if job.fallback else None
        report = compliance(framed, composed, opts.bg_color, fell_back, out)
        if opts.strict and not report["passed"]:
            raise WorkerError("not_compliant", f"{report['preset']}: {failing_summary(report)}")
    del rgb, mask, alpha  # the encoder's buffers (~15 bytes a pixel for WEBP) come next
    clock.lap("post")

    body, mime = encode(composed, opts)
    clock.lap("encode")
    to_input = input_size[0] / work_size[0]
    return Result(
        image=body,
        mime=mime,
        meta={
            # Plain ints, floats and bools only (never NumPy's): the reply must encode (docs/protocol.md#errors).
            "width": int(composed.size[0]),
            "height": int(composed.size[1]),
            "input_width": int(input_size[0]),
            "input_height": int(input_size[1]),
            "model": job.model,
            "precision": str(model.precision),
            "model_fallback": job.fallback,
            "crop_mode": crop_mode,
            "crop_box": _scaled(crop_box, to_input),
            "face": framed.face.to_wire(to_input) if framed is not None and framed.face is not None else None,
            "faces": None if framed is None else [f.to_wire(to_input) for f in framed.faces],
            "roll_deg": float(framed.roll_deg) if framed is not None else None,
            "compliance": report,
            "preset": opts.preset,
            "timings_ms": clock.total(),
        },
    )


def _shown(composed: Image.Image, rgb: Image.Image, mask: Image.Image) -> Image.Image:
    """The output as a person sees it, for measuring: a transparent one on grey, a mask-only job's photo."""
    if composed.mode == "RGB":
        return composed
    if composed.mode == "L":
        return rgb
    out = Image.new("RGB", composed.size, (128, 128, 128))
    out.paste(rgb, (0, 0), composed.getchannel("A"))
    return out


def _trim(
    rgb: Image.Image,
    mask: Image.Image,
    alpha: Image.Image | None,
    opts: RemoveOptions,
    cap: int,
    work_size: tuple[int, int],
) -> tuple[Image.Image, Image.Image, Image.Image | None, Box | None, str]:
    """`trim`: the subject's box plus padding (crop_box in working pixels), or everything when the mask is empty."""
    box = subject_box(mask)
    if box is None:
        return rgb, mask, alpha, None, "none"
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
    x0, y0, x1, y1 = (round(v * to_work) for v in box)
    return rgb, mask, alpha, (x0, y0, x1, y1), "trim"
