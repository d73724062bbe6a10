"""Compose the result (cut-out, colour background or mask) and encode it.

Encoder figures (an 800x800 RGBA cut-out; docs/memory.md, "Encoding"): PNG through fpng, a single-pass
deflate written for speed, 10-60x faster than Pillow's zlib at level 1 for 8-11 % more bytes on photos;
WEBP at libwebp's method 0 with a near-lossless alpha plane, ~5x faster than method 4 for ~17 % more bytes.
"""

from __future__ import annotations

import io

from PIL import Image, ImageChops

from .options import RemoveOptions
from .presets import RGB

try:  # a wheel with a C++ extension: where it is missing (an unusual platform), Pillow writes the PNG
    from fpng import fpng_ext as _fpng
except ImportError:  # pragma: no cover - exercised only where the wheel does not exist
    _fpng = None

MIME = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
WHITE: RGB = (255, 255, 255)
_CHANNELS = {"RGB": 3, "RGBA": 4}


def compose(rgb: Image.Image, mask: Image.Image, alpha: Image.Image | None, opts: RemoveOptions) -> Image.Image:
    if alpha is not None:
        # Keep what the input already had transparent, transparent.
        mask = ImageChops.multiply(mask, alpha)
    if opts.only_mask:
        return mask
    color = opts.bg_color if opts.bg_color is not None else (WHITE if opts.format == "jpeg" else None)
    if color is not None:
        out = Image.new("RGB", rgb.size, color)
        out.paste(rgb, (0, 0), mask)
        return out
    # putalpha keeps the subject's own colours on soft edges (and the input's colours everywhere, which
    # the protocol promises); compositing onto transparent black (rembg's naive_cutout) darkens them.
    out = rgb.convert("RGBA")
    out.putalpha(mask)
    return out


# fpng needs the whole image in one buffer (a copy: 4 bytes a pixel); above this, Pillow's zlib encoder,
# which streams rows, keeps a full-size job's peak where it was.
FPNG_MAX_PIXELS = 4_000_000


def _png(image: Image.Image) -> bytes:
    channels = _CHANNELS.get(image.mode)
    if _fpng is not None and channels is not None and image.width * image.height <= FPNG_MAX_PIXELS:
        # fpng ships no types: its encoder returns the PNG's bytes.
        png: bytes = _fpng.encode_image_to_memory(image.tobytes(), image.width, image.height, channels)
        return png
    buf = io.BytesIO()
    # zlib level 1: a 12 MP cut-out encodes in ~950 ms at level 1, 3980 at Pillow's default 6, for 4 % more
    # bytes. Also masks (mode L) and everything where fpng is missing.
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def encode(image: Image.Image, opts: RemoveOptions) -> tuple[bytes, str]:
    fmt = "png" if opts.only_mask else opts.format
    if fmt == "png":
        return _png(image), MIME[fmt]
    buf = io.BytesIO()
    if fmt == "webp":
        # alpha_quality 90: the alpha plane (the mask) is near-lossless instead of lossless; a third faster
        # again and a little smaller (docs/memory.md, "Encoding").
        image.save(buf, "WEBP", quality=90, method=0, alpha_quality=90)
    else:
        image.save(buf, "JPEG", quality=92, subsampling=0)
    return buf.getvalue(), MIME[fmt]
