"""Read a TFLite model file (a FlatBuffer) into plain Python: enough of the schema to convert small CNNs.

Written here rather than taken from the `tflite` package so that `pyworker models install` derives the face
models with nothing but NumPy, on every platform pyworker runs on. Only the fields the converter uses are
read; the field numbers are TFLite's schema.fbs (tensorflow/lite/schema/schema.fbs).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

# TensorType -> NumPy dtype (schema.fbs enum TensorType).
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}


class _Buf:
    """FlatBuffer primitives over one bytes object (little-endian, offsets relative to where they are stored)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def u8(self, pos: int) -> int:
        return self.data[pos]

    def i8(self, pos: int) -> int:
        return int(struct.unpack_from("<b", self.data, pos)[0])

    def u16(self, pos: int) -> int:
        return int(struct.unpack_from("<H", self.data, pos)[0])

    def i32(self, pos: int) -> int:
        return int(struct.unpack_from("<i", self.data, pos)[0])

    def u32(self, pos: int) -> int:
        return int(struct.unpack_from("<I", self.data, pos)[0])

    def u64(self, pos: int) -> int:
        return int(struct.unpack_from("<Q", self.data, pos)[0])

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of a table's field, or None when absent (the schema default applies)."""
        vtable = table - self.i32(table)
        entry = 4 + 2 * index
        if entry >= self.u16(vtable):
            return None
        offset = self.u16(vtable + entry)
        return table + offset if offset else None

    def ref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def table(self, table: int, index: int) -> int | None:
        pos = self.field(table, index)
        return None if pos is None else self.ref(pos)

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(start of the elements, length) of a vector field; (0, 0) when absent."""
        pos = self.field(table, index)
        if pos is None:
            return 0, 0
        vec = self.ref(pos)
        return vec + 4, self.u32(vec)

    def tables(self, table: int, index: int) -> list[int]:
        start, n = self.vector(table, index)
        return [self.ref(start + 4 * i) for i in range(n)]

    def ints(self, table: int, index: int) -> list[int]:
        start, n = self.vector(table, index)
        return list(struct.unpack_from(f"<{n}i", self.data, start)) if n else []

    def string(self, table: int, index: int) -> str:
        start, n = self.vector(table, index)
        return self.data[start : start + n].decode("utf-8") if n else ""

    def scalar(self, table: int, index: int, fmt: str, default: int) -> int:
        pos = self.field(table, index)
        return default if pos is None else struct.unpack_from("<" + fmt, self.data, pos)[0]


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: type
    data: np.ndarray | None  # constant weights, or None for an activation


@dataclass
class Operator:
    op: int  # BuiltinOperator code
    inputs: list[int]  # tensor indices; -1 is an omitted optional input
    outputs: list[int]
    buf: _Buf | None = field(default=None, repr=False)
    options_table: int | None = None  # position of the builtin options table in buf

    def option(self, index: int, fmt: str, default: int) -> int:
        """Field `index` of the op's builtin options (struct format `fmt`), or the schema's `default`."""
        if self.buf is None or self.options_table is None:
            return default
        return self.buf.scalar(self.options_table, index, fmt, default)


@dataclass
class Graph:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]


def read(data: bytes) -> Graph:
    """The first subgraph of a TFLite model, with every constant tensor's data as a NumPy array."""
    b = _Buf(data)
    model = b.ref(0)
    # OperatorCode: deprecated_builtin_code (0, int8), builtin_code (3, int32): the larger is the real one.
    codes = [max(b.scalar(oc, 0, "b", 0), b.scalar(oc, 3, "i", 0)) for oc in b.tables(model, 1)]
    buffers = []
    for buf in b.tables(model, 4):
        start, n = b.vector(buf, 0)  # Buffer.data; models over 2 GB keep data outside: not ours
        buffers.append(data[start : start + n])
    subgraph = b.tables(model, 2)[0]
    tensors = []
    for t in b.tables(subgraph, 0):
        shape = tuple(b.ints(t, 0))
        dtype = DTYPES[b.scalar(t, 1, "b", 0)]
        raw = buffers[b.scalar(t, 2, "I", 0)]
        arr = np.frombuffer(raw, dtype=dtype).reshape(shape) if raw else None
        tensors.append(Tensor(b.string(t, 3), shape, dtype, arr))
    operators = [
        Operator(codes[b.scalar(op, 0, "I", 0)], b.ints(op, 1), b.ints(op, 2), b, b.table(op, 4))
        for op in b.tables(subgraph, 3)
    ]
    return Graph(tensors, operators, b.ints(subgraph, 1), b.ints(subgraph, 2))
