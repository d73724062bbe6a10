"""Cheap inputs that used to cost a worker seconds or gigabytes (issue 11), drawn here, never shipped.

Each maker returns the bytes a hostile caller would send; tests/test_bad_inputs.py sends them to
real workers and bench/attacks.py prints what each one costs.
"""

from __future__ import annotations

import io
import struct
from functools import cache

import msgpack
import numpy as np
from PIL import Image, ImageCms

from .images import encode, subject_scene


def _segments(jpeg: bytes) -> list[tuple[int, int]]:
    """(start, end) of every marker segment after SOI; an SOS segment runs to the next marker."""
    out, pos = [], 2
    while pos < len(jpeg) - 1:
        marker = jpeg[pos + 1]
        if marker == 0xD9:  # EOI
            out.append((pos, pos + 2))
            break
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        end = pos + 2 + length
        if marker == 0xDA:  # entropy-coded data follows: up to the next marker that is not a stuffed 0xFF00 or RST
            while True:
                end = jpeg.index(b"\xff", end)
                if jpeg[end + 1] != 0 and not 0xD0 <= jpeg[end + 1] <= 0xD7:
                    break
                end += 2
        out.append((pos, end))
        pos = end
    return out


@cache
def scan_bomb(side: int = 4096, scans: int = 2000) -> bytes:
    """A progressive JPEG whose tiniest scan (a few bytes of all-zero AC data) is repeated `scans` times.

    Each repeat makes libjpeg walk every block of the image again: ~1.4 ms per scan at 4096 px.
    """
    gray = Image.linear_gradient("L").resize((side, side)).convert("RGB")  # chroma all zero: tiny chroma scans
    data = encode(gray, "JPEG", quality=50, progressive=True)
    segs = _segments(data)
    scans_only = [(s, e) for s, e in segs if data[s + 1] == 0xDA]
    start, end = min(scans_only, key=lambda se: se[1] - se[0])
    # The scan's Huffman table may be defined just before it; repeat table + scan together.
    before = [seg for seg in segs if seg[1] == start]
    if before and data[before[0][0] + 1] == 0xC4:
        start = before[0][0]
    eoi = data.rindex(b"\xff\xd9")
    return data[:eoi] + data[start:end] * scans + data[eoi:]


@cache
def photo_jpeg(side: int = 4096, quality: int = 85) -> bytes:
    """A square photo-like JPEG (the drawn figure on its backdrop) of `side` pixels."""
    img, _ = subject_scene((side, side), seed=11)
    return encode(img, "JPEG", quality=quality)


@cache
def webp_blank_canvas(side: int = 4096) -> bytes:
    """A ~1 KB lossless WEBP of `side` x `side` pixels: a plain colour compresses to almost nothing."""
    return encode(Image.new("RGB", (side, side), (200, 210, 220)), "WEBP", lossless=True, quality=0)


def avif_lying_ispe(frame: tuple[int, int], declared: tuple[int, int]) -> bytes:
    """An AVIF whose `ispe` box declares `declared` over an AV1 frame of `frame` (issue 22: 3.5 KB, `ispe`
    2000x2000 over 16384x16384, cost +594 MB). Flat colour, so the file stays small."""
    buf = io.BytesIO()
    Image.new("RGB", frame, (200, 30, 40)).save(buf, "AVIF", speed=10)
    data = bytearray(buf.getvalue())
    at = data.index(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", *declared)
    return bytes(data)


def heic_deep(side: int, bits: int = 10, alpha: bool = True) -> bytes:
    """A HEIC of `bits` per sample, 4:4:4, with an alpha plane when asked (the dearest HEIC to decode)."""
    import pillow_heif

    yy, xx = np.mgrid[0:side, 0:side]
    base = ((xx * 7 + yy * 3) % 4096).astype(np.uint16) * 16
    planes = [base, base[::-1], base[:, ::-1]] + ([np.full_like(base, 40000)] if alpha else [])
    arr = np.stack(planes, axis=-1)
    mode = ("RGBA" if alpha else "RGB") + (";16" if bits > 8 else "")
    if bits <= 8:
        arr = (arr >> 8).astype(np.uint8)
    buf = io.BytesIO()
    pillow_heif.from_bytes(mode=mode, size=(side, side), data=arr.tobytes()).save(buf, quality=30, chroma=444)
    return buf.getvalue()


def msgpack_object_bomb(objects: int, width: int = 1000) -> bytes:
    """A ping whose extra key holds `objects` empty arrays, nested `width` per array (so no array is long)."""
    leaf = b"\x90"  # fixarray of 0
    inner = b"\xdc" + struct.pack(">H", width) + leaf * width  # array16 of `width` empty arrays
    outer_len = max(1, objects // width)
    body = b"\xdd" + struct.pack(">I", outer_len) + inner * outer_len  # array32 of them
    head = msgpack.packb({"id": 7, "op": "ping"}, use_bin_type=True)
    # A map of 3: rewrite the fixmap header of the 2-key map, then append the third key and its value.
    payload = bytes([0x83]) + head[1:] + msgpack.packb("x") + body
    return struct.pack(">I", len(payload)) + payload


def display_p3_jpeg(size: tuple[int, int] = (320, 400)) -> tuple[bytes, Image.Image]:
    """A photo stored in Display P3 (what phones write), and the sRGB picture it shows.

    The stored pixels are the sRGB picture converted to P3 with lcms, so a reader that ignores the
    embedded profile sees duller, shifted colours; one that honours it sees the sRGB picture again.
    """
    img, _ = subject_scene(size, seed=4)
    arr = np.asarray(img).copy()
    arr[: size[1] // 3, :] = (230, 30, 40)  # a saturated red band: where P3 and sRGB differ most
    img = Image.fromarray(arr)
    p3 = _display_p3_profile()
    srgb = ImageCms.createProfile("sRGB")
    stored = ImageCms.profileToProfile(img, srgb, p3, outputMode="RGB")
    assert stored is not None
    icc = p3.tobytes()
    return encode(stored, "JPEG", quality=95, icc_profile=icc), img


def _display_p3_profile() -> ImageCms.ImageCmsProfile:
    """Display P3 primaries, D65 white, gamma 2.2: a minimal ICC matrix profile written here (no file shipped)."""
    return ImageCms.ImageCmsProfile(io.BytesIO(_matrix_profile_bytes()))


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _tag(sig: bytes, data: bytes) -> tuple[bytes, bytes]:
    return sig, data + b"\0" * (-len(data) % 4)


def _matrix_profile_bytes() -> bytes:
    """A minimal ICC v2 RGB display profile: Display P3 primaries (D50-adapted), sRGB-like gamma 2.2 curves."""
    # Bradford-adapted colorants of Display P3 (as in Apple's Display P3 profile), rows X, Y, Z.
    r, g, b = (0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841)
    xyz = lambda c: b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in c)  # noqa: E731
    curve = b"curv\0\0\0\0" + struct.pack(">I", 1) + struct.pack(">H", int(2.2 * 256))
    desc_text = b"Display P3 (test)\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(desc_text)) + desc_text + b"\0" * 12 + b"\0" * 67
    tags = [
        _tag(b"desc", desc),
        _tag(b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        _tag(b"rXYZ", xyz(r)),
        _tag(b"gXYZ", xyz(g)),
        _tag(b"bXYZ", xyz(b)),
        _tag(b"rTRC", curve),
        _tag(b"gTRC", curve),
        _tag(b"bTRC", curve),
        _tag(b"cprt", b"text\0\0\0\0CC0\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, blobs = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(blobs), len(data))
        blobs += data
    size = offset + len(blobs)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"APPL"
        + b"\0" * 4
        + b"\0" * 8
        + b"\0" * 8
        + struct.pack(">I", 0)
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\0" * 4
        + b"\0" * 16
        + b"\0" * 28
    )
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + blobs
