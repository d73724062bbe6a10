"""Length-prefixed msgpack frames: a 4-byte big-endian length, then that many bytes.

The reader is a pure state machine fed with whatever chunks the pipe hands
over, so framing can be tested without a process and never depends on how a
client happens to split its writes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack

HEADER = struct.Struct(">I")
CHUNK_SIZE = 256 * 1024


@dataclass
class Frame:
    """One complete payload, still undecoded."""

    payload: bytes | bytearray

    def take(self) -> bytes | bytearray:
        """The payload, released: once decoded, a 30 MB frame must not outlive its message."""
        payload, self.payload = self.payload, b""
        return payload


@dataclass(frozen=True)
class OversizedFrame:
    """A header announced more bytes than allowed; the payload is being dropped."""

    length: int


Event = Frame | OversizedFrame


class FrameReader:
    """Turns a byte stream into frames, dropping oversized ones without losing its place.

    Each frame's payload is allocated once at its announced size and filled in
    place, so a 10 MiB image arriving in forty chunks costs one buffer, not a
    growing one that is copied on every append.
    """

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._header = bytearray()
        self._body: bytearray | None = None
        self._filled = 0
        self._skip = 0  # payload bytes of an oversized frame still to drop

    @property
    def mid_frame(self) -> bool:
        """True when the stream stopped inside a frame (or inside a dropped one)."""
        return bool(self._header) or self._body is not None or self._skip > 0

    def _take_body(self) -> bytearray:
        body, self._body = self._body, None
        assert body is not None
        return body

    def feed(self, chunk: bytes) -> Iterator[Event]:
        view = memoryview(chunk)
        pos, size = 0, len(view)
        while pos < size:
            if self._skip:
                dropped = min(self._skip, size - pos)
                self._skip -= dropped
                pos += dropped
            elif self._body is None:
                take = min(HEADER.size - len(self._header), size - pos)
                self._header += view[pos : pos + take]
                pos += take
                if len(self._header) < HEADER.size:
                    continue
                (length,) = HEADER.unpack(self._header)
                self._header.clear()
                if length > self.max_frame_bytes:
                    self._skip = length
                    yield OversizedFrame(length)
                elif length == 0:
                    yield Frame(b"")
                else:
                    self._body, self._filled = bytearray(length), 0
            else:
                take = min(len(self._body) - self._filled, size - pos)
                self._body[self._filled : self._filled + take] = view[pos : pos + take]
                self._filled += take
                pos += take
                if self._filled == len(self._body):
                    # No local keeps the payload: while the consumer handles it, this generator is
                    # suspended here, and a name bound here would pin the buffer until it resumes.
                    yield Frame(self._take_body())


def encode_frame(message: dict[str, Any]) -> bytes:
    body: bytes = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def unencodable(value: Any, path: str = "") -> str | None:
    """Where in `value` the first thing msgpack refuses is, and what it is; None when every leaf packs.

    For the `internal` error of a reply that could not be encoded ("meta.compliance.checks[3].value
    is numpy.bool (True)"): the message must name the culprit, not only the exception.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            found = unencodable(key, f"{path} key {key!r}"[:120]) or unencodable(
                item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key!r}]"
            )
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = unencodable(item, f"{path}[{i}]")
            if found:
                return found
        return None
    try:
        msgpack.packb(value, use_bin_type=True)
    except Exception as exc:  # TypeError for an unknown type, OverflowError, ValueError...
        kind = type(value)
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return f"{path.lstrip('.') or 'the reply'} is {name} {shown}: {exc}"[:300]
    return None


@dataclass(frozen=True)
class DecodeLimits:
    """What one payload may unpack to. A request is ~30 objects; 33 million empty arrays fit in 32 MiB
    and cost Python 2.5 GB and 10 s, so objects are counted before anything is built."""

    max_objects: int = 4096  # every value, key and container, nested ones included
    max_str_bytes: int = 4096  # op, option values, model and preset names are short
    max_bin_bytes: int = 32 * 1024 * 1024  # the image: the frame limit bounds it anyway


# Type byte -> (bytes of a length field that follows, or of the fixed body; kind). Kinds: "a" array,
# "m" map, "s" length-prefixed body (str/bin), "e" ext (length, then 1 type byte, then body), "f" fixed.
_HEADS: dict[int, tuple[int, str]] = {
    0xC0: (0, "f"), 0xC2: (0, "f"), 0xC3: (0, "f"),
    0xC4: (1, "s"), 0xC5: (2, "s"), 0xC6: (4, "s"),
    0xC7: (1, "e"), 0xC8: (2, "e"), 0xC9: (4, "e"),
    0xCA: (4, "f"), 0xCB: (8, "f"), 0xCC: (1, "f"), 0xCD: (2, "f"), 0xCE: (4, "f"), 0xCF: (8, "f"),
    0xD0: (1, "f"), 0xD1: (2, "f"), 0xD2: (4, "f"), 0xD3: (8, "f"),
    0xD4: (2, "f"), 0xD5: (3, "f"), 0xD6: (5, "f"), 0xD7: (9, "f"), 0xD8: (17, "f"),
    0xD9: (1, "s"), 0xDA: (2, "s"), 0xDB: (4, "s"),
    0xDC: (2, "a"), 0xDD: (4, "a"), 0xDE: (2, "m"), 0xDF: (4, "m"),
}  # fmt: skip


def count_objects(payload: bytes | bytearray, limit: int) -> int:
    """Walk the msgpack headers (bodies are skipped, nothing is built) and count the objects, up to limit.

    Raises ValueError past `limit`. A malformed or truncated payload just ends the walk: the
    decoder reports it properly.
    """
    view = memoryview(payload)
    pos, size, pending, seen = 0, len(view), 1, 0
    while pending and pos < size:
        pending -= 1
        seen += 1
        if seen > limit:
            raise ValueError(f"frame holds more than {limit} msgpack objects (the maximum)")
        t = view[pos]
        pos += 1
        if t <= 0x7F or t >= 0xE0:  # fixint
            continue
        if t <= 0x8F:  # fixmap
            pending += 2 * (t & 0x0F)
        elif t <= 0x9F:  # fixarray
            pending += t & 0x0F
        elif t <= 0xBF:  # fixstr
            pos += t & 0x1F
        else:
            n, kind = _HEADS.get(t, (0, "f"))
            if kind == "f":
                pos += n
                continue
            length = int.from_bytes(view[pos : pos + n], "big")
            pos += n
            if kind == "a":
                pending += length
            elif kind == "m":
                pending += 2 * length
            else:
                pos += length + (1 if kind == "e" else 0)
    return seen


def decode_payload(payload: bytes | bytearray, limits: DecodeLimits | None = None) -> Any:
    """Decode one payload; raises ValueError for anything that is not exactly one msgpack object,
    or that holds more objects or longer strings than `limits` allow."""
    limits = limits or DecodeLimits()
    count_objects(payload, limits.max_objects)
    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=False,
            max_str_len=limits.max_str_bytes,
            max_bin_len=limits.max_bin_bytes,
            max_array_len=limits.max_objects,
            max_map_len=limits.max_objects,
            max_ext_len=limits.max_str_bytes,
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise ValueError(str(exc) or type(exc).__name__) from exc
