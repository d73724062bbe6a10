"""Compose the result (cut-out, colour background or mask) and encode it."""

from __future__ import annotations

import io

from PIL import Image, ImageChops

from .options import RGB, RemoveOptions

MIME = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
WHITE: RGB = (255, 255, 255)


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
    # putalpha keeps the subject's own colours on soft edges; compositing onto
    # transparent black (rembg's naive_cutout) darkens them.
    out = rgb.convert("RGBA")
    out.putalpha(mask)
    return out


def encode(image: Image.Image, opts: RemoveOptions) -> tuple[bytes, str]:
    fmt = "png" if opts.only_mask else opts.format
    buf = io.BytesIO()
    if fmt == "png":
        # zlib level 1: a 12 MP RGBA cut-out encodes in ~950 ms at level 1, 1400 at 3, 3980 at Pillow's
        # default 6, for 4 % / 13 % more bytes; at 800 px, 24 vs 34 ms. Encoding is most of a full-size job.
        image.save(buf, "PNG", compress_level=1)
    elif fmt == "webp":
        image.save(buf, "WEBP", quality=90, method=4)
    else:
        image.save(buf, "JPEG", quality=92, subsampling=0)
    return buf.getvalue(), MIME[fmt]
