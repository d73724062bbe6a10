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


@dataclass(frozen=True)
class Frame:
    """One complete payload, still undecoded."""

    payload: bytes | bytearray


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
                    body, self._body = self._body, None
                    yield Frame(body)


def encode_frame(message: dict[str, Any]) -> bytes:
    body = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def decode_payload(payload: bytes | bytearray) -> Any:
    """Decode one payload; raises ValueError for anything that is not exactly one msgpack object."""
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ValueError(str(exc) or type(exc).__name__) from exc
