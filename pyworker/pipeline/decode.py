"""Bytes -> a validated, EXIF-upright RGB image no larger than the job needs.

Checks run cheapest first: byte size, magic numbers, the header's dimensions,
and only then the pixel decode. Downscaling happens during the decode where
the format allows it (JPEG's DCT scaling via ``draft``), then by integer box
reduction, so a 12-megapixel photo never sits in memory at full size.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import WorkerError, format_mb

ACCEPTED = {"JPEG", "MPO", "PNG", "WEBP", "BMP"}
ACCEPTED_TEXT = "JPEG, PNG, WEBP or BMP"
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_TRANSPOSE = {  # EXIF orientation -> the transpose that makes it upright (as ImageOps.exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Limits:
    max_input_bytes: int = 10 * 1024 * 1024
    max_side: int = 4096
    min_side: int = 50


@dataclass
class Decoded:
    rgb: Image.Image
    alpha: Image.Image | None  # the input's own transparency, when it had any
    input_size: tuple[int, int]  # after EXIF rotation, before any downscale
    format: str


def _sniff_unsupported(data: bytes) -> str | None:
    """Name formats Pillow can't open, so the client hears 'SVG', not 'not an image'."""
    head = data[:1024]
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
    # Markup: an XML prolog, a doctype or a comment may come first, and editors often write a BOM.
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith(b"<") and b"<svg" in text:
        return "SVG"
    return None


def _bomb_message(data: bytes, limits: Limits, exc: Exception) -> str:
    """Name the figure and the limit the client can act on: the dimensions against --max-side."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # read the header once more without Pillow's check (no pixels are decoded)
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
    except Exception:
        return f"Image rejected as a decompression bomb: {exc}"
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    m = limits.max_side
    if w > m or h > m:
        return f"Image dimensions ({w}x{h}) exceed maximum ({m}x{m}); rejected as a decompression bomb"
    return f"Image dimensions ({w}x{h}, {w * h} pixels) exceed the decompression-bomb limit ({saved} pixels)"


def open_image(data: bytes, limits: Limits) -> Image.Image:
    """Identify and validate the image from its header; pixels are not decoded yet."""
    if len(data) == 0:
        raise WorkerError("invalid_image", "Image is empty (0 bytes)")
    if len(data) > limits.max_input_bytes:
        raise WorkerError(
            "input_too_large",
            f"File size ({format_mb(len(data))}) exceeds maximum ({format_mb(limits.max_input_bytes)})",
        )
    named = _sniff_unsupported(data)
    if named:
        raise WorkerError("unsupported_format", f"Unsupported image format: {named}; send {ACCEPTED_TEXT}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise WorkerError("image_too_large", _bomb_message(data, limits, exc)) from exc
    except Image.UnidentifiedImageError:
        raise WorkerError(
            "invalid_image", f"Not a recognised image ({len(data)} bytes starting {data[:8].hex()})"
        ) from None
    except Exception as exc:  # Pillow plugins raise SyntaxError, ValueError, OSError, struct.error...
        raise WorkerError("invalid_image", f"Image header is corrupt: {exc}") from exc
    if img.format not in ACCEPTED:
        raise WorkerError("unsupported_format", f"Unsupported image format: {img.format}; send {ACCEPTED_TEXT}")
    w, h = img.size
    m = limits.max_side
    if w > m or h > m:
        raise WorkerError("image_too_large", f"Image dimensions ({w}x{h}) exceed maximum ({m}x{m})")
    n = limits.min_side
    if w < n or h < n:
        raise WorkerError("image_too_small", f"Image dimensions ({w}x{h}) are below minimum ({n}x{n})")
    return img


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:
        return 1  # a broken EXIF block is no reason to reject a photo


_HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# Modes Image.reduce averages correctly (LA and RGBA premultiplied). Not P or PA (it would
# average palette indices), not 1 or the I;16 family (unsupported): those are converted first.
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F")


def _to_8bit(img: Image.Image, factor: int) -> Image.Image:
    """16-bit or float grayscale -> L, shrunk first: a 4096x4096 16-bit PNG of 50 KB must not cost 400 MB."""
    _, hi = img.getextrema()  # of the full image, before averaging lowers it
    # Pillow's own I->L conversion clips at 255; scale the 16-bit range to 8-bit instead.
    peak = 65535.0 if img.mode != "F" and hi > 255 else max(float(hi), 1.0)
    if img.mode not in ("I", "F"):
        img = img.convert("I")  # the I;16 family cannot be reduced as is
    if factor >= 2:
        img = img.reduce(factor)
    arr = np.asarray(img, dtype=np.float32)
    return Image.fromarray(np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8), mode="L")


def _to_rgb_alpha(img: Image.Image, factor: int = 1) -> tuple[Image.Image, Image.Image | None]:
    """Decoded pixels -> RGB (+ alpha when some pixel is not opaque), reduced by `factor` before any full-size copy."""
    if img.mode in _HIGH_DEPTH:
        img, factor = _to_8bit(img, factor), 1
    has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info)
    if img.mode not in _REDUCIBLE:
        img = img.convert("RGBA" if has_alpha else "RGB")
    if factor >= 2:
        img = img.reduce(factor)
    if not has_alpha:
        return (img if img.mode == "RGB" else img.convert("RGB")), None
    rgba = img if img.mode == "RGBA" else img.convert("RGBA")
    alpha = rgba.getchannel("A")
    lo, _ = alpha.getextrema()
    return rgba.convert("RGB"), (None if lo == 255 else alpha)


def load_scaled(img: Image.Image, target_side: int) -> Decoded:
    """Decode the pixels, upright, with the longest side ≥ target_side (0: full size) but not much more."""
    w, h = img.size
    fmt = str(img.format)
    longest = max(w, h)
    try:
        if target_side and longest > target_side and fmt in ("JPEG", "MPO"):
            # Ask for the box that keeps the aspect ratio, so both sides may shrink by the same factor.
            scale = target_side / longest
            img.draft("RGB", (max(1, int(w * scale + 0.999)), max(1, int(h * scale + 0.999))))
        img.load()
    except Exception as exc:
        raise WorkerError("invalid_image", f"Image data is truncated or corrupt: {exc}") from exc
    # Only after load(): PNG's getexif() loads the pixels itself, and _orientation() swallows
    # errors, so reading it first turned a corrupt PNG into a half-decoded "success".
    orientation = _orientation(img)
    input_size = (h, w) if orientation in _ROTATED_ORIENTATIONS else (w, h)
    # Integer box reduction of what the decoder produced, in its own mode, before any conversion.
    factor = max(img.size) // target_side if target_side else 1
    rgb, alpha = _to_rgb_alpha(img, factor)
    method = _TRANSPOSE.get(orientation)
    if method is not None:
        # Rotate after shrinking: a quarter of the pixels to move.
        rgb = rgb.transpose(method)
        alpha = alpha.transpose(method) if alpha is not None else None
    return Decoded(rgb=rgb, alpha=alpha, input_size=input_size, format=fmt)
