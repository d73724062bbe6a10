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
from PIL import Image, UnidentifiedImageError, features

from .. import capabilities
from ..errors import WorkerError, format_mb
from ..limits import Limits
from . import colour
from .avif_frame import avif_frame_size

ACCEPTED = {"JPEG", "MPO", "PNG", "WEBP", "BMP", "HEIF", "AVIF"}
ACCEPTED_TEXT = "JPEG, PNG, WEBP, BMP, HEIC or AVIF"
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
# ISO media (ftyp) brands: the major brand and the compatible ones name what the file holds.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"MiHE", b"MiHB", b"MiHA"}
# Peak bytes per pixel of a full-size decode, measured (tests/test_bad_inputs.py checks WEBP's):
# libwebp's animation decoder keeps two RGBA canvases, then Pillow copies the frame twice.
DECODE_BYTES_PER_PIXEL = {"WEBP": 16, "HEIF": 6, "AVIF": 6}
_DEFAULT_BYTES_PER_PIXEL = 4  # PNG, BMP: the RGBA image itself
# A HEIC with more than 8 bits or an alpha plane: libheif decodes 16-bit (or 4) planes, converts them to
# interleaved RGBA, and Pillow copies that. 10-bit 4:4:4 RGBA at 4096 px cost +324 MB a job (issue 22;
# 8-bit 4:2:0 RGB +166): 16 B/px keeps the worst accepted one within the README's ~260 MB.
HEIF_DEEP_BYTES_PER_PIXEL = 16
_HEIF_MAJOR = {
    b"heic",
    b"heix",
    b"heim",
    b"heis",
    b"hevc",
    b"hevx",
    b"hevm",
    b"hevs",
    b"mif1",
    b"msf1",
}  # pillow-heif's
_MARKUP_SCAN = 64 * 1024  # how far into a markup file to look for <svg: XML prologs and comments can be long


@dataclass
class Decoded:
    rgb: Image.Image
    alpha: Image.Image | None  # the input's own transparency, when it had any
    input_size: tuple[int, int]  # after EXIF rotation, before any downscale
    format: str


def _ftyp_brands(head: bytes) -> set[bytes]:
    """The major and compatible brands of an ISO media file's first box (HEIF, AVIF, MP4...)."""
    size = int.from_bytes(head[:4], "big")
    end = min(max(size, 16), len(head))
    return {head[8:12]} | {head[i : i + 4] for i in range(16, end - 3, 4)}


def sniff(data: bytes) -> str | None:
    """The format the magic numbers announce, for the formats Pillow cannot open or that need a plugin."""
    head = data[:1024]
    if head.startswith(b"GIF8"):  # GIF87a, GIF89a, and versions with a junk byte Pillow won't open
        return "GIF"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "JPEG XL"
    if head[4:8] == b"ftyp":
        brands = _ftyp_brands(head)
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & _HEIC_BRANDS:
            return "HEIC"
        return "ISO media (MP4/MOV)"
    # Markup: an XML prolog, a doctype or a comment may come first, and editors often write a BOM.
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        window = data[:_MARKUP_SCAN].lower()
        return "SVG" if b"<svg" in window else "markup (XML/HTML)"
    return None


_heif_registered = False


def _heif_plugin() -> bool:
    """Register pillow-heif's HEIC opener on first use (import + register: +4.4 MB RSS; only phones' photos need it)."""
    global _heif_registered
    try:
        import pillow_heif
    except ImportError:
        return False
    if not _heif_registered:
        pillow_heif.register_heif_opener(thumbnails=False)
        _heif_registered = True
    return True


def _supported(named: str) -> bool:
    if named == "HEIC":
        return _heif_plugin()
    if named == "AVIF":
        return bool(features.check("avif"))
    return False


def jpeg_scans(data: bytes) -> int:
    """Start-of-scan markers in a JPEG: an upper bound of the scans libjpeg will run, in one C-speed pass.

    Entropy-coded data stuffs every 0xFF with 0x00, so 0xFFDA appears only as a marker (or inside an
    embedded thumbnail, whose few scans count too: the bound stays an upper one).
    """
    return data.count(b"\xff\xda")


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
    named = sniff(data)
    if named in ("HEIC", "AVIF") and not _supported(named):
        raise capabilities.unavailable(named.lower())  # ours to read, but this install lacks the library
    if named and not _supported(named):
        raise WorkerError("unsupported_format", f"Unsupported image format: {named}; send {ACCEPTED_TEXT}")
    if named == "HEIC" and data[8:12] not in _HEIF_MAJOR:
        # pillow-heif accepts only some major brands; Apple's MiHE/MiHB files say HEIC in their
        # compatible brands. libheif reads the boxes, not the brand: present the generic one.
        data = data[:8] + b"mif1" + data[12:]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise WorkerError("image_too_large", _bomb_message(data, limits, exc)) from exc
    except UnidentifiedImageError:
        if named:
            raise WorkerError("invalid_image", f"{named} image is corrupt or truncated ({len(data)} bytes)") from None
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
    if img.format == "AVIF":
        # Its size above is the `ispe` box's; the decoder allocates the frame the AV1 stream declares.
        w, h = _avif_decode_size(data, (w, h), m)
    n = limits.min_side
    if w < n or h < n:
        raise WorkerError("image_too_small", f"Image dimensions ({w}x{h}) are below minimum ({n}x{n})")
    if img.format not in ("JPEG", "MPO"):  # JPEG decodes scaled (draft): its cost is bounded by the target
        per_pixel = _decode_bytes_per_pixel(img)
        need = w * h * per_pixel
        if need > limits.max_decode_bytes:
            most = limits.max_decode_bytes / per_pixel
            raise WorkerError(
                "image_too_large",
                f"{img.format} image ({w}x{h}) needs {format_mb(need)} to decode, above the decode budget "
                f"({format_mb(limits.max_decode_bytes)}): send at most {most / 1e6:.1f} megapixels, or a JPEG",
            )
    else:
        scans = jpeg_scans(data)
        if scans > limits.max_jpeg_scans:
            raise WorkerError(
                "image_too_complex",
                f"JPEG has {scans} scans, more than the maximum ({limits.max_jpeg_scans}); "
                "re-save it as a baseline or ordinary progressive JPEG",
            )
    return img


def _decode_bytes_per_pixel(img: Image.Image) -> int:
    """Peak bytes a pixel of a full-size decode, from the header (mode, bit depth)."""
    if img.format == "HEIF" and (int(img.info.get("bit_depth") or 8) > 8 or "A" in img.mode):
        return HEIF_DEEP_BYTES_PER_PIXEL
    return DECODE_BYTES_PER_PIXEL.get(str(img.format), _DEFAULT_BYTES_PER_PIXEL)


def _avif_decode_size(data: bytes, declared: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The frame dav1d will allocate (the larger of each side), refused beyond max_side before any pixel."""
    try:
        frame = avif_frame_size(data)
    except (ValueError, IndexError) as exc:
        raise WorkerError("invalid_image", f"AVIF header is corrupt: {exc}") from exc
    if frame is None:
        raise WorkerError("invalid_image", "AVIF holds no AV1 sequence header: its frame size cannot be read")
    w, h = max(declared[0], frame[0]), max(declared[1], frame[1])
    if w > max_side or h > max_side:
        raise WorkerError(
            "image_too_large",
            f"AVIF frame ({frame[0]}x{frame[1]}) exceeds maximum ({max_side}x{max_side}); "
            f"its header (ispe) says {declared[0]}x{declared[1]}",
        )
    return w, h


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
    assert not isinstance(hi, tuple)  # one band (_HIGH_DEPTH modes): a pair of numbers, not a pair per band
    # Pillow's own I->L conversion clips at 255; scale the 16-bit range to 8-bit instead.
    peak = 65535.0 if img.mode != "F" and hi > 255 else max(float(hi), 1.0)
    if img.mode not in ("I", "F"):
        img = img.convert("I")  # the I;16 family cannot be reduced as is
    if factor >= 2:
        img = img.reduce(factor)
    arr = np.asarray(img, dtype=np.float32)
    return Image.fromarray(np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8), mode="L")


def _to_rgb_alpha(
    img: Image.Image, factor: int = 1, icc: bytes | None = None
) -> tuple[Image.Image, Image.Image | None]:
    """Decoded pixels -> sRGB RGB (+ alpha when some pixel is not opaque), reduced by `factor` before any copy."""
    if img.mode in _HIGH_DEPTH:
        img, factor = _to_8bit(img, factor), 1
    has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info)
    if img.mode not in _REDUCIBLE:
        img = img.convert("RGBA" if has_alpha else "RGB")
    if factor >= 2:
        img = img.reduce(factor)
    alpha = None
    if has_alpha:
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        alpha = rgba.getchannel("A")
        lo, _ = alpha.getextrema()
        alpha = None if lo == 255 else alpha
        img = rgba.convert("RGB")
    # The embedded profile, after the shrink (a 16th of the pixels to convert); CMYK needs it most.
    rgb = colour.to_srgb(img, icc)
    if rgb is None:
        rgb = img if img.mode == "RGB" else img.convert("RGB")
    return rgb, alpha


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
    rgb, alpha = _to_rgb_alpha(img, factor, img.info.get("icc_profile"))
    method = _TRANSPOSE.get(orientation)
    if method is not None:
        # Rotate after shrinking: a quarter of the pixels to move.
        rgb = rgb.transpose(method)
        alpha = alpha.transpose(method) if alpha is not None else None
    return Decoded(rgb=rgb, alpha=alpha, input_size=input_size, format=fmt)
