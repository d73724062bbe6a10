"""The real frame sizes inside an AVIF file, read from the AV1 stream rather than the `ispe` box.

Pillow (libavif) reports the size the `ispe` property declares, but dav1d allocates the frame the AV1
sequence header declares: a 3.5 KB file whose `ispe` says 2000x2000 over a 16384x16384 frame passed the
decode budget and cost a worker +594 MB (issue 22). The sequence header's `max_frame_width/height` bound
every frame of the stream (a frame may only be smaller), so the budget is checked against them.

Everything here reads a few header bytes: the number of boxes, items, extents and OBUs walked is capped,
so the walk costs microseconds whatever the file declares.
"""

from __future__ import annotations

from collections.abc import Iterator

_MAX_BOXES = 256  # children of one box walked at most (a real file has about 10 at each level)
_MAX_ITEMS = 1024
_MAX_OBUS = 64  # OBUs of one item scanned for its sequence header (it comes first, after a temporal delimiter)
_OBU_SEQUENCE_HEADER = 1


def _u(data: bytes, at: int, n: int) -> int:
    if n == 0:
        return 0
    if at + n > len(data):
        raise ValueError("truncated box")
    return int.from_bytes(data[at : at + n], "big")


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes between start and end; stops at a malformed one."""
    p = start
    for _ in range(_MAX_BOXES):
        if p + 8 > end:
            return
        size, kind, head = _u(data, p, 4), data[p + 4 : p + 8], 8
        if size == 1:
            size, head = _u(data, p + 8, 8), 16
        elif size == 0:
            size = end - p
        if size < head or p + size > end:
            return
        yield kind, p + head, p + size
        p += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, s, e in _boxes(data, start, end):
        if k == kind:
            return s, e
    return None


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def f(self, n: int) -> int:
        v = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("truncated sequence header")
            v = (v << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def uvlc(self) -> int:
        zeros = 0
        while self.f(1) == 0:
            zeros += 1
            if zeros >= 32:
                return (1 << 32) - 1
        return (1 << zeros) - 1 + self.f(zeros)


def _sequence_header_size(payload: bytes) -> tuple[int, int]:
    """max_frame_width, max_frame_height of an AV1 sequence header OBU's payload (AV1 spec 5.5)."""
    b = _Bits(payload)
    b.f(3)  # seq_profile
    b.f(1)  # still_picture
    if b.f(1):  # reduced_still_picture_header
        b.f(5)
    else:
        decoder_model = False
        buffer_delay_bits = 0
        if b.f(1):  # timing_info_present_flag
            b.f(32)
            b.f(32)
            if b.f(1):
                b.uvlc()
            decoder_model = bool(b.f(1))
            if decoder_model:
                buffer_delay_bits = b.f(5) + 1
                b.f(32)
                b.f(5)
                b.f(5)
        initial_display_delay = b.f(1)
        for _ in range(b.f(5) + 1):  # operating points
            b.f(12)
            if b.f(5) > 7:
                b.f(1)
            if decoder_model and b.f(1):
                b.f(buffer_delay_bits)
                b.f(buffer_delay_bits)
                b.f(1)
            if initial_display_delay and b.f(1):
                b.f(4)
    wbits, hbits = b.f(4) + 1, b.f(4) + 1
    return b.f(wbits) + 1, b.f(hbits) + 1


def _leb128(data: bytes, at: int) -> tuple[int, int]:
    v = 0
    for i in range(8):
        if at + i >= len(data):
            raise ValueError("truncated OBU size")
        byte = data[at + i]
        v |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return v, at + i + 1
    raise ValueError("OBU size too long")


def _obu_frame_sizes(data: bytes) -> list[tuple[int, int]]:
    """Sizes from the sequence headers among the first OBUs of an AV1 stream."""
    sizes = []
    p = 0
    for _ in range(_MAX_OBUS):
        if p >= len(data):
            break
        header = data[p]
        kind, has_ext, has_size = (header >> 3) & 0xF, header & 4, header & 2
        q = p + 1 + (1 if has_ext else 0)
        if has_size:
            n, q = _leb128(data, q)
        else:
            n = len(data) - q
        if kind == _OBU_SEQUENCE_HEADER:
            sizes.append(_sequence_header_size(data[q : q + n]))
        p = q + n
    return sizes


def _items(data: bytes, meta: tuple[int, int]) -> tuple[dict[int, bytes], dict[int, list[tuple[int, int, int]]], int]:
    """item id -> type, item id -> extents (construction method, offset, length), the idat payload start."""
    types: dict[int, bytes] = {}
    locations: dict[int, list[tuple[int, int, int]]] = {}
    start, end = meta[0] + 4, meta[1]  # meta is a full box
    iinf = _child(data, start, end, b"iinf")
    if iinf:
        version = data[iinf[0]]
        first = iinf[0] + 4 + (2 if version == 0 else 4)
        for kind, s, _end in _boxes(data, first, iinf[1]):
            if kind == b"infe" and data[s] >= 2 and len(types) < _MAX_ITEMS:
                id_len = 2 if data[s] == 2 else 4
                types[_u(data, s + 4, id_len)] = data[s + 4 + id_len + 2 : s + 4 + id_len + 6]
    iloc = _child(data, start, end, b"iloc")
    if iloc:
        s = iloc[0]
        version = data[s]
        off_size, len_size = data[s + 4] >> 4, data[s + 4] & 0xF
        base_size, index_size = data[s + 5] >> 4, (data[s + 5] & 0xF) if version in (1, 2) else 0
        p = s + 6
        count_len = 2 if version < 2 else 4
        count = _u(data, p, count_len)
        p += count_len
        for _ in range(min(count, _MAX_ITEMS)):
            item = _u(data, p, count_len)
            p += count_len
            method = 0
            if version in (1, 2):
                method = _u(data, p, 2) & 0xF
                p += 2
            p += 2  # data_reference_index
            base = _u(data, p, base_size)
            p += base_size
            extents = []
            n = _u(data, p, 2)
            p += 2
            for _ in range(min(n, _MAX_ITEMS)):
                p += index_size
                offset = _u(data, p, off_size)
                p += off_size
                length = _u(data, p, len_size)
                p += len_size
                extents.append((method, base + offset, length))
            locations[item] = extents
    idat = _child(data, start, end, b"idat")
    return types, locations, idat[0] if idat else -1


def _item_bytes(data: bytes, extents: list[tuple[int, int, int]], idat: int, cap: int = 4096) -> bytes:
    """The first `cap` bytes of an item (its sequence header is at its start)."""
    out = b""
    for method, offset, length in extents:
        if method == 1 and idat >= 0:
            offset += idat
        elif method != 0:
            continue
        length = length or len(data) - offset
        out += data[offset : offset + min(length, cap - len(out))]
        if len(out) >= cap:
            break
    return out


def avif_frame_size(data: bytes) -> tuple[int, int] | None:
    """The widest and the tallest frame any AV1 item (image, alpha, grid tile) or grid of the file declares;
    None if none is found.

    Raises ValueError for headers too short to read.
    """
    meta = _child(data, 0, len(data), b"meta")
    if meta is None:
        return None
    types, locations, idat = _items(data, meta)
    sizes: list[tuple[int, int]] = []
    for item, kind in types.items():
        extents = locations.get(item, [])
        if kind == b"av01":
            sizes += _obu_frame_sizes(_item_bytes(data, extents, idat))
        elif kind == b"grid":
            g = _item_bytes(data, extents, idat, 12)
            wide = 4 if len(g) > 1 and g[1] & 1 else 2
            if len(g) >= 4 + 2 * wide:
                sizes.append((_u(g, 4, wide), _u(g, 4 + wide, wide)))
    # The av1C properties' configOBUs carry the sequence header too.
    iprp = _child(data, meta[0] + 4, meta[1], b"iprp")
    ipco = _child(data, iprp[0], iprp[1], b"ipco") if iprp else None
    if ipco:
        for kind, s, e in _boxes(data, ipco[0], ipco[1]):
            if kind == b"av1C" and e - s > 4:
                sizes += _obu_frame_sizes(data[s + 4 : e])
    if not sizes:
        return None
    return max(w for w, _ in sizes), max(h for _, h in sizes)
