"""Write an ONNX model file (protocol buffers) from plain Python: the handful of messages a CNN needs.

Written here rather than taken from the `onnx` package so that deriving the face models at set-up needs
nothing beyond NumPy. Field numbers are onnx.proto's (onnx/onnx.proto3). The output is a pure function of
the input: the same graph gives the same bytes (the derived files are md5-checked).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

IR_VERSION = 7  # onnx 1.7; onnxruntime reads it on every version pyworker supports
OPSET = 13
# TensorProto.DataType
FLOAT, INT64 = 1, 7
_DTYPE = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64}
# AttributeProto.AttributeType
_ATTR_INT, _ATTR_INTS, _ATTR_FLOAT = 2, 7, 1


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # protobuf int64: two's complement in ten bytes
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _int(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(value)


def _bytes(number: int, value: bytes) -> bytes:
    return _key(number, 2) + _varint(len(value)) + value


def _str(number: int, value: str) -> bytes:
    return _bytes(number, value.encode("utf-8"))


@dataclass
class Node:
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, int | float | list[int]] = field(default_factory=dict)

    def encode(self) -> bytes:
        out = b"".join(_str(1, i) for i in self.inputs) + b"".join(_str(2, o) for o in self.outputs)
        out += _str(3, self.outputs[0]) + _str(4, self.op_type)
        for name, value in sorted(self.attrs.items()):
            if isinstance(value, list):
                attr = _str(1, name) + b"".join(_int(8, v) for v in value) + _int(20, _ATTR_INTS)
            elif isinstance(value, float):
                attr = _str(1, name) + _key(2, 5) + struct.pack("<f", value) + _int(20, _ATTR_FLOAT)
            else:
                attr = _str(1, name) + _int(3, value) + _int(20, _ATTR_INT)
            out += _bytes(5, attr)
        return out


def _tensor(name: str, array: np.ndarray) -> bytes:
    data = np.ascontiguousarray(array)
    dims = b"".join(_int(1, d) for d in data.shape)
    return (
        dims
        + _int(2, _DTYPE[data.dtype])
        + _str(8, name)
        + _bytes(9, data.astype(data.dtype.newbyteorder("<")).tobytes())
    )


def _value_info(name: str, shape: tuple[int, ...]) -> bytes:
    dims = b"".join(_bytes(1, _int(1, d)) for d in shape)
    tensor_type = _int(1, FLOAT) + _bytes(2, dims)
    return _str(1, name) + _bytes(2, _bytes(1, tensor_type))


def model(
    name: str,
    nodes: list[Node],
    initializers: dict[str, np.ndarray],
    inputs: dict[str, tuple[int, ...]],
    outputs: dict[str, tuple[int, ...]],
) -> bytes:
    """A serialised ModelProto: one graph, float32 inputs and outputs of fixed shapes."""
    graph = b"".join(_bytes(1, n.encode()) for n in nodes) + _str(2, name)
    graph += b"".join(_bytes(5, _tensor(k, v)) for k, v in initializers.items())
    graph += b"".join(_bytes(11, _value_info(k, s)) for k, s in inputs.items())
    graph += b"".join(_bytes(12, _value_info(k, s)) for k, s in outputs.items())
    opset = _str(1, "") + _int(2, OPSET)
    return _int(1, IR_VERSION) + _str(2, "pyworker") + _bytes(7, graph) + _bytes(8, opset)
