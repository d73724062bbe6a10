"""Convert a small TFLite CNN (MediaPipe's face models) to ONNX, deterministically, with NumPy only.

The graph is rewritten op by op in NCHW (onnxruntime's native layout for convolutions); the ONNX model keeps
TFLite's own NHWC inputs and outputs, so callers feed it exactly what they would feed TFLite. What it does:
- DEQUANTIZE of a constant (MediaPipe stores fp16 weights behind one) is folded into an fp32 initializer;
- TFLite's SAME padding becomes explicit pads (TFLite pads the extra pixel after, as ONNX's SAME_UPPER);
- fused activations become a Relu/Clip after the op.
Supported ops: the ones in face_landmark.tflite and face_detection_short_range.tflite. Anything else raises
ValueError naming the op, so a new model fails at set-up, not at run time.
"""

from __future__ import annotations

import math

import numpy as np

from . import tflite_reader
from .onnx_proto import Node, model

# BuiltinOperator codes (schema.fbs)
ADD, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, DEQUANTIZE = 0, 2, 3, 4, 6
MAX_POOL_2D, RELU, RESHAPE, PAD, PRELU = 17, 19, 22, 34, 54
SAME = 0  # Padding enum
NCHW = (0, 3, 1, 2)  # NHWC axes in NCHW order
NHWC = (0, 2, 3, 1)


class _Converter:
    def __init__(self, graph: tflite_reader.Graph) -> None:
        self.g = graph
        self.nodes: list[Node] = []
        self.inits: dict[str, np.ndarray] = {}
        self.consts: dict[int, np.ndarray] = {}  # tensor index -> folded constant (fp32 / int)
        for i, t in enumerate(graph.tensors):
            if t.data is not None:
                self.consts[i] = t.data

    def name(self, index: int) -> str:
        return f"t{index}"

    def init(self, name: str, array: np.ndarray) -> str:
        self.inits[name] = array
        return name

    def shape(self, index: int) -> tuple[int, ...]:
        return self.g.tensors[index].shape

    def activation(self, out: str, fused: int) -> None:
        """Apply a fused activation in place of `out`: the op wrote `out_pre`."""
        if fused == 0:
            return
        pre = out + "_pre"
        self.nodes[-1].outputs[0] = pre
        if fused == 1:
            self.nodes.append(Node("Relu", [pre], [out]))
        elif fused == 3:
            lo = self.init(out + "_lo", np.asarray(0.0, np.float32))
            hi = self.init(out + "_hi", np.asarray(6.0, np.float32))
            self.nodes.append(Node("Clip", [pre, lo, hi], [out]))
        else:
            raise ValueError(f"fused activation {fused} is not supported")

    def same_pads(self, index: int, kernel: tuple[int, int], stride: tuple[int, int]) -> list[int]:
        """Explicit [top, left, bottom, right] of TFLite's SAME padding for NHWC input tensor `index`."""
        _, h, w, _ = self.shape(index)
        pads = []
        for size, k, s in ((h, kernel[0], stride[0]), (w, kernel[1], stride[1])):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        return [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]

    def conv(self, op: tflite_reader.Operator, depthwise: bool) -> None:
        x, w_index, b_index = op.inputs[0], op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else -1
        weights = self.consts[w_index].astype(np.float32)
        fused_field = 4 if depthwise else 3
        stride = (op.option(2, "i", 1), op.option(1, "i", 1))
        dil_fields = (6, 5) if depthwise else (5, 4)
        dilation = [op.option(dil_fields[0], "i", 1), op.option(dil_fields[1], "i", 1)]
        if depthwise:
            # TFLite [1, kh, kw, C*m] -> ONNX [C*m, 1, kh, kw], group = input channels
            kernel = weights.shape[1:3]
            onnx_w = weights.transpose(3, 0, 1, 2)
            group = self.shape(x)[3]
        else:
            # TFLite [O, kh, kw, I] -> ONNX [O, I, kh, kw]
            kernel = weights.shape[1:3]
            onnx_w = weights.transpose(0, 3, 1, 2)
            group = 1
        pads = self.same_pads(x, kernel, stride) if op.option(0, "b", 0) == SAME else [0, 0, 0, 0]
        out = self.name(op.outputs[0])
        inputs = [self.name(x), self.init(out + "_w", np.ascontiguousarray(onnx_w))]
        if b_index >= 0:
            inputs.append(self.init(out + "_b", self.consts[b_index].astype(np.float32)))
        attrs: dict[str, int | float | list[int]] = {
            "kernel_shape": list(kernel),
            "strides": list(stride),
            "pads": pads,
            "dilations": dilation,
            "group": group,
        }
        self.nodes.append(Node("Conv", inputs, [out], attrs))
        self.activation(out, op.option(fused_field, "b", 0))

    def run(self) -> tuple[list[Node], dict[str, np.ndarray]]:
        g = self.g
        for index in g.inputs:
            self.nodes.append(Node("Transpose", [f"in{index}"], [self.name(index)], {"perm": list(NCHW)}))
        for op in g.operators:
            out = self.name(op.outputs[0])
            if op.op == DEQUANTIZE:
                if op.inputs[0] not in self.consts:
                    raise ValueError("DEQUANTIZE of a computed tensor is not supported")
                self.consts[op.outputs[0]] = self.consts[op.inputs[0]].astype(np.float32)
            elif op.op in (CONV_2D, DEPTHWISE_CONV_2D):
                self.conv(op, depthwise=op.op == DEPTHWISE_CONV_2D)
            elif op.op == ADD:
                self.nodes.append(Node("Add", [self.operand(i) for i in op.inputs], [out]))
                self.activation(out, op.option(0, "b", 0))
            elif op.op == RELU:
                self.nodes.append(Node("Relu", [self.name(op.inputs[0])], [out]))
            elif op.op == PRELU:
                alpha = self.consts[op.inputs[1]].astype(np.float32)
                alpha = alpha.reshape(-1, 1, 1) if alpha.size > 1 else alpha.reshape(1)
                self.nodes.append(Node("PRelu", [self.name(op.inputs[0]), self.init(out + "_a", alpha)], [out]))
            elif op.op == MAX_POOL_2D:
                stride = (op.option(2, "i", 1), op.option(1, "i", 1))
                kernel = (op.option(4, "i", 1), op.option(3, "i", 1))
                pads = self.same_pads(op.inputs[0], kernel, stride) if op.option(0, "b", 0) == SAME else [0] * 4
                attrs: dict[str, int | float | list[int]] = {
                    "kernel_shape": list(kernel),
                    "strides": list(stride),
                    "pads": pads,
                }
                self.nodes.append(Node("MaxPool", [self.name(op.inputs[0])], [out], attrs))
                self.activation(out, op.option(5, "b", 0))
            elif op.op == PAD:
                paddings = self.consts[op.inputs[1]].astype(np.int64)  # NHWC [[before, after] * 4]
                begin = [int(paddings[a][0]) for a in NCHW]
                end = [int(paddings[a][1]) for a in NCHW]
                pad_name = self.init(out + "_p", np.asarray(begin + end, dtype=np.int64))
                self.nodes.append(Node("Pad", [self.name(op.inputs[0]), pad_name], [out]))
            elif op.op == RESHAPE:
                # Back to TFLite's NHWC memory order, then its own target shape: the result is not 4-D NCHW.
                nhwc = out + "_nhwc"
                self.nodes.append(Node("Transpose", [self.name(op.inputs[0])], [nhwc], {"perm": list(NHWC)}))
                target = self.init(out + "_s", np.asarray(self.shape(op.outputs[0]), dtype=np.int64))
                self.nodes.append(Node("Reshape", [nhwc, target], [out]))
            elif op.op == CONCATENATION:
                axis = op.option(0, "i", 0)
                rank = len(self.shape(op.outputs[0]))
                axis = axis % rank
                if rank == 4:
                    axis = NCHW.index(axis)
                self.nodes.append(Node("Concat", [self.name(i) for i in op.inputs], [out], {"axis": axis}))
                self.activation(out, op.option(1, "b", 0))
            else:
                raise ValueError(f"TFLite op {op.op} is not supported by pyworker's converter")
        for index in g.outputs:
            if len(self.shape(index)) == 4:
                self.nodes.append(Node("Transpose", [self.name(index)], [f"out{index}"], {"perm": list(NHWC)}))
            else:
                self.nodes.append(Node("Identity", [self.name(index)], [f"out{index}"]))
        return self.nodes, self.inits

    def operand(self, index: int) -> str:
        if index in self.consts:
            value = self.consts[index].astype(np.float32)
            if value.ndim == 4:
                value = value.transpose(NCHW)
            elif value.ndim == 3:  # HWC broadcast against NCHW
                value = value.transpose(2, 0, 1)
            return self.init(self.name(index) + "_c", np.ascontiguousarray(value))
        return self.name(index)


def convert(tflite: bytes, name: str) -> bytes:
    """The ONNX model for a TFLite model: inputs `in<i>` and outputs `out<i>` in TFLite's shapes and order."""
    graph = tflite_reader.read(tflite)
    nodes, inits = _Converter(graph).run()
    inputs = {f"in{i}": graph.tensors[i].shape for i in graph.inputs}
    outputs = {f"out{i}": graph.tensors[i].shape for i in graph.outputs}
    return model(name, nodes, inits, inputs, outputs)
