"""Embedded ICC profiles -> sRGB, once, on the decoded (already shrunk) pixels.

Phones store photos in Display P3; read as if they were sRGB their reds and greens come out
duller and shifted. The worker converts every profiled input to sRGB with lcms (Pillow's
ImageCms) before the model and the output, and writes untagged sRGB, what browsers assume
(docs/reliability.md#colour-profiles). Conversion runs after the decode's downscale, so it
costs ~2-6 ms at 800 px; a profile that lcms cannot read is ignored like a broken EXIF block.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict

from PIL import Image, ImageCms

from .. import logs

_SRGB = ImageCms.createProfile("sRGB")
_CACHE: OrderedDict[tuple[bytes, str], ImageCms.ImageCmsTransform | None] = OrderedDict()
_CACHE_SIZE = 8  # a handful of cameras' profiles; each transform is a few KB
_MODES = {"RGB": "RGB ", "CMYK": "CMYK", "L": "GRAY"}  # Pillow mode -> the ICC colour space it needs


def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    key = (hashlib.blake2b(icc, digest_size=16).digest(), mode)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    transform: ImageCms.ImageCmsTransform | None = None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space
        described = (profile.profile.profile_description or "").lower()
        if space == _MODES[mode] and not (mode == "RGB" and described.startswith("srgb")):
            transform = ImageCms.buildTransform(profile, _SRGB, mode, "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        logs.log("warning", "icc_profile_ignored", reason=str(exc)[:200], bytes=len(icc))
    _CACHE[key] = transform
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return transform


def to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image | None:
    """`img` (RGB, CMYK or L) converted from its profile to sRGB RGB; None when there is nothing to do."""
    if not icc or img.mode not in _MODES:
        return None
    transform = _transform(icc, img.mode)
    if transform is None:
        return None
    try:
        out = ImageCms.applyTransform(img, transform)
    except (ImageCms.PyCMSError, ValueError) as exc:
        logs.log("warning", "icc_profile_ignored", reason=str(exc)[:200], bytes=len(icc))
        return None
    if out is not None:
        out.info.pop("icc_profile", None)  # lcms tags its output; results are untagged sRGB (see above)
    return out
